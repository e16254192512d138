"""How egs/seedsvc, egs/songbloom_ja, egs/acestep_accompaniment, egs/songgeneration and egs/zipvoice_ja submit their heavy steps to a cluster.

Training must be a ``$cuda_cmd`` job that asks for a GPU, inference and evaluation
``$decode_cmd`` jobs, and every such binary gets ``--device``. The stand-in qsub and sbatch of
tests/utils/standins record each submission and then refuse it (``STANDIN_REJECT=1``), so a
recipe stops right after submitting its first job and nothing is trained. The scheduler flags
come from the stand-in's record; the submitted command from the job script that queue.pl or
slurm.pl wrote.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ZIPVOICE = REPO / "egs" / "zipvoice_ja"
SEEDSVC = REPO / "egs" / "seedsvc"
SONGBLOOM = REPO / "egs" / "songbloom_ja"
ACCOMPANIMENT = REPO / "egs" / "acestep_accompaniment"
SONGGENERATION = REPO / "egs" / "songgeneration"
STANDINS = REPO / "tests" / "utils" / "standins"
TOOL = {"sge": "qsub", "slurm": "sbatch"}
# What conf/queue.conf and conf/slurm.conf turn --gpu 1, --gpu 0 and --mem 4G ($decode_cmd) into.
GPU = {"sge": ["-l", "gpu=1", "-q", "g.q"], "slurm": ["-p", "gpu", "--gres=gpu:1", "--time", "4:0:0"]}
NO_GPU = {"sge": ["-q", "all.q"], "slurm": ["-p", "shared"]}
DECODE = {"sge": ["-l", "mem_free=4G,ram_free=4G"], "slurm": ["--mem-per-cpu", "4G"]}


@dataclass
class Job:
    flags: list[str]  # scheduler arguments before the job script
    log: str  # the task log the job script writes
    command: list[str]  # the submitted command line

    def has(self, *seq: str) -> bool:
        return any(self.flags[i : i + len(seq)] == list(seq) for i in range(len(self.flags) - len(seq) + 1))

    def asks_for_a_gpu(self) -> bool:
        return any(f.startswith(("gpu=", "--gres")) for f in self.flags)

    def option(self, name: str) -> str:
        assert self.command.count(name) == 1, self.command
        return self.command[self.command.index(name) + 1]


def script_value(script: str, name: str) -> str:
    line = next(ln for ln in script.splitlines() if ln.startswith(f"{name}="))
    return shlex.split(line)[0][len(name) + 1 :]


def submit(backend: str, cwd: Path, tmp_path: Path, *args) -> tuple[subprocess.CompletedProcess, list[Job]]:
    """Run a recipe script with cmd_backend=BACKEND; the jobs it submitted, in order."""
    state = tmp_path / "scheduler"
    env = dict(os.environ, PATH=f"{STANDINS}{os.pathsep}{os.environ['PATH']}", STANDIN_STATE=str(state),
               STANDIN_REJECT="1", SHIRABE_GRID_RETRY_DELAY="0", cmd_backend=backend, PYTHONUNBUFFERED="1")
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    calls = state / f"{TOOL[backend]}.calls"
    jobs = []
    for line in calls.read_text().splitlines() if calls.exists() else []:
        argv = line.split()  # the test's paths hold no spaces
        script = Path(argv[-1]).read_text()
        jobs.append(Job(argv[:-1], script_value(script, "log"), shlex.split(script_value(script, "cmd"))))
    return r, jobs


def touch(*paths: Path, text: str = "") -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# -- the cases: (script and options, given tmp_path) -> (cwd, argv, module, task log) ---------------

def zipvoice_train(t: Path):
    return ZIPVOICE, ["./run.sh", "--stage", 4, "--stop-stage", 4, "--data-dir", t / "data", "--exp-dir", t / "exp"], \
        "zipvoice.bin.train_zipvoice", t / "exp/log/train.log"


def zipvoice_distill_train(t: Path):
    touch(t / "exp/epoch-12-avg-4.pt")  # the teacher
    return ZIPVOICE, ["./run.sh", "--stage", 9, "--stop-stage", 9, "--data-dir", t / "data", "--exp-dir", t / "exp"], \
        "zipvoice.bin.train_zipvoice_distill", t / "exp/distill/log/train_first.log"


def study_data(t: Path) -> Path:
    """What run_study.sh's steps 1-3 leave behind, as empty stand-ins."""
    work = t / "study"
    (work / "lists").mkdir(parents=True)
    (work / "lists/split.json").write_text(json.dumps({"finetune_speakers": ["b", "c"]}))
    for part in ("pretrain", "finetune"):
        touch(*(work / "lists" / f"{part}_{s}.tsv" for s in ("train", "dev")))
        data = work / f"data_{part}"
        touch(data / "tokens.txt", text="_\t0\n")
        for s in ("train", "dev"):
            touch(data / f"manifests/custom_cuts_{s}.jsonl.gz", data / f"fbank/custom_cuts_{s}.jsonl.gz",
                  data / f"fbank/custom_cuts_{s}_tokens.jsonl.gz")
    return work


def study_argv(work: Path) -> list:
    return ["local/run_study.sh", "--work-dir", work, "--report-dir", work / "report", "--results-md",
            work / "RESULTS.md", "--strategies", "full", "--nj", 1]


def study_pretrain(t: Path):
    work = study_data(t)
    return ZIPVOICE, study_argv(work), "zipvoice.bin.train_zipvoice", work / "log/train_pretrain.log"


def study_models(t: Path) -> Path:
    work = study_data(t)
    for sys in ("pretrained", "full"):
        touch(work / f"models/{sys}/model.pt")
    for s in ("finetune_eval", "zero_shot"):
        touch(work / f"lists/{s}/test_list.tsv")
    return work


def study_synthesis(t: Path):
    work = study_models(t)
    return ZIPVOICE, study_argv(work), "zipvoice.bin.infer_zipvoice", work / "log/infer_pretrained.finetune_eval.log"


def study_evaluation(t: Path):
    work = study_models(t)
    for sys in ("pretrained", "full"):
        touch(work / f"models/{sys}/dev_loss.json", *(work / f"infer/{sys}/{s}/.done" for s in ("finetune_eval", "zero_shot")))
    return ZIPVOICE, study_argv(work), "zipvoice.bin.evaluate", work / "log/evaluate_pretrained.finetune_eval.log"


def zipvoice_stage(stage: int, module: str, log: str):
    def case(t: Path):
        touch(t / "data/mini/test.tsv", text="a_1\tこんにちは。\t/x/a_1.wav\na_2\tさようなら。\t/x/a_2.wav\n")
        touch(t / "exp/epoch-12-avg-4.pt", t / "phone/model.pt")
        return ZIPVOICE, ["./run.sh", "--stage", stage, "--stop-stage", stage, "--data-dir", t / "data",
                          "--exp-dir", t / "exp", "--phone-model-dir", t / "phone"], module, t / "exp/log" / log
    case.__name__ = f"zipvoice_stage{stage}"
    return case


def zipvoice_phone_recognizer(t: Path):
    """Stage 8 trains the phone recognizer first when --phone-model-dir has none."""
    touch(t / "exp/epoch-12-avg-4.pt", t / "data/mini/train.tsv")
    return ZIPVOICE, ["./run.sh", "--stage", 8, "--stop-stage", 8, "--data-dir", t / "data", "--exp-dir", t / "exp",
                      "--phone-model-dir", t / "phone"], "shirabe.bin.train_phone_recognizer", t / "phone/log/train.log"


def zipvoice_dev_loss(t: Path):
    touch(t / "exp/epoch-12-avg-4.pt", t / "exp/distill/second/iter-50-avg-2.pt")
    return ZIPVOICE, ["./run.sh", "--stage", 12, "--stop-stage", 12, "--data-dir", t / "data", "--exp-dir", t / "exp"], \
        "zipvoice.bin.compute_dev_loss", t / "exp/distill/log/dev_teacher16.log"


def seedsvc(stage: int, *extra, setup=()):
    def argv(t: Path):
        for rel in setup:
            touch(t / rel)
        return SEEDSVC, ["./run.sh", "--stage", stage, "--stop-stage", stage, "--data-dir", t / "data",
                         "--exp-dir", t / "exp", *extra]
    return argv


def seedsvc_content_training(t: Path):
    return *seedsvc(2)(t), "seedsvc.bin.train_content", t / "exp/content/log/train.log"


def seedsvc_phase0(t: Path):
    return *seedsvc(3)(t), "seedsvc.bin.train", t / "exp/v2_base/log/train.log"


def seedsvc_phase1(t: Path):
    return *seedsvc(3, "--v2-checkpoint", t / "v2.pth")(t), "seedsvc.bin.train", t / "exp/f0_p1/log/train.log"


def seedsvc_content(t: Path):
    return *seedsvc(2, setup=["exp/content/model.pt"])(t), "seedsvc.bin.compute_content", \
        t / "data/features/log/content_phone_train.log"


def seedsvc_convert(t: Path):
    return *seedsvc(5, setup=["exp/convert/jobs.tsv"])(t), "seedsvc.bin.convert", t / "exp/convert/f0/log/convert.log"


def seedsvc_evaluate(t: Path):
    return *seedsvc(6)(t), "seedsvc.bin.evaluate", t / "exp/log/evaluate.log"


def songbloom(stage: int):
    def argv(t: Path):
        return SONGBLOOM, ["./run.sh", "--stage", stage, "--stop-stage", stage, "--data-dir", t / "data",
                           "--exp-dir", t / "exp"]
    return argv


def songbloom_codebook(t: Path):
    return *songbloom(3)(t), "songbloom.bin.train_vq", t / "exp/vq/log/train_vq.log"


def songbloom_features(t: Path):
    manifest = t / "data/prepared/songs_recordings_train.jsonl.gz"
    manifest.parent.mkdir(parents=True)
    with gzip.open(manifest, "wt") as f:
        f.write('{"id": "a"}\n{"id": "b"}\n')
    return *songbloom(4)(t), "songbloom.bin.extract_features", t / "data/features/log/train.JOB.log"


def songbloom_training(t: Path):
    return *songbloom(5)(t), "songbloom.bin.train", t / "exp/songbloom/log/train.log"


def songbloom_generation(t: Path):
    return *songbloom(7)(t), "songbloom.bin.infer", t / "exp/generate/songbloom-avg2/log/infer.log"


def songbloom_scoring(t: Path):
    touch(t / "exp/phone/model.pt")
    cwd, argv = songbloom(8)(t)
    return cwd, [*argv, "--phone-model-dir", t / "exp/phone"], "songbloom.bin.score_dev", t / "exp/log/score_dev.log"


def accompaniment(stage: int):
    def argv(t: Path):
        return ACCOMPANIMENT, ["./run.sh", "--stage", stage, "--stop-stage", stage, "--data-dir", t / "data",
                               "--exp-dir", t / "exp"]
    return argv


def accompaniment_cache(t: Path):
    return *accompaniment(2)(t), "acestep.bin.cache_latents", t / "data/cache/log/vocal.log"


def accompaniment_training(t: Path):
    return *accompaniment(3)(t), "acestep.bin.train_accompaniment", t / "exp/image2image/log/train.log"


def accompaniment_controlnet(t: Path):
    return *accompaniment(4)(t), "acestep.bin.train_accompaniment", t / "exp/controlnet/log/train.log"


def accompaniment_generation(t: Path):
    touch(t / "data/prepared/test/vocal/k1.flac", t / "data/prepared/test/vocal/k1_lyrics.txt")
    touch(t / "data/prepared/test/vocal/k1_prompt.txt", text="pop, piano")
    return *accompaniment(6)(t), "acestep.bin.generate_accompaniment", \
        t / "exp/generate/image2image_s0.3/log/generate.k1.log"


def songgeneration(stage: int, module: str, log: str):
    def case(t: Path):
        return SONGGENERATION, ["./run.sh", "--stage", stage, "--stop-stage", stage, "--data-dir", t / "data",
                                "--exp-dir", t / "exp"], module, t / log
    case.__name__ = f"songgeneration_stage{stage}"
    return case


TRAINING = [zipvoice_train, zipvoice_phone_recognizer, zipvoice_distill_train, study_pretrain, seedsvc_content_training, seedsvc_phase0,
            seedsvc_phase1, songbloom_codebook, songbloom_features, songbloom_training, accompaniment_cache,
            accompaniment_training, accompaniment_controlnet,
            songgeneration(4, "songgeneration.bin.train", "exp/lelm/log/train.log")]
INFERENCE = [zipvoice_stage(6, "zipvoice.bin.infer_zipvoice", "infer-epoch-12-avg-4.log"),
             zipvoice_stage(8, "zipvoice.bin.evaluate", "evaluate-epoch-12-avg-4.log"), zipvoice_dev_loss,
             study_synthesis, study_evaluation, seedsvc_content, seedsvc_convert, seedsvc_evaluate,
             songbloom_generation, songbloom_scoring, accompaniment_generation,
             songgeneration(6, "songgeneration.bin.generate", "exp/generate/log/generate.log"),
             songgeneration(7, "songgeneration.bin.evaluate", "exp/log/evaluate.log")]
BACKENDS = ["sge", "slurm"]


def first_job(backend, tmp_path, case, *options):
    cwd, argv, module, log = case(tmp_path)
    r, jobs = submit(backend, cwd, tmp_path, *argv, *options)
    assert r.returncode != 0  # the stand-in refused the job; nothing ran
    assert jobs, r.stdout[-2000:] + r.stderr[-2000:]
    job = jobs[0]
    assert job.command[:3] == ["python3", "-m", module], job.command
    assert job.log == str(log)
    return job, jobs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", TRAINING, ids=lambda c: c.__name__)
def test_training_is_a_cuda_cmd_job_asking_for_a_gpu(backend, case, tmp_path):
    job, jobs = first_job(backend, tmp_path, case)
    assert len(jobs) == 1  # a refused training job stops the recipe
    assert job.has(*GPU[backend]), job.flags
    assert not job.has(*DECODE[backend])  # $cuda_cmd, not $decode_cmd
    assert job.option("--device") == "auto"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", TRAINING, ids=lambda c: c.__name__)
def test_use_gpu_false_asks_for_no_gpu_and_trains_on_the_cpu(backend, case, tmp_path):
    job, _ = first_job(backend, tmp_path, case, "--use-gpu", "false")
    assert job.has(*NO_GPU[backend]), job.flags
    assert not job.asks_for_a_gpu()
    assert job.option("--device") == "cpu"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", INFERENCE, ids=lambda c: c.__name__)
def test_inference_and_evaluation_are_decode_cmd_jobs(backend, case, tmp_path):
    job, jobs = first_job(backend, tmp_path, case)
    assert job.has(*DECODE[backend]), job.flags
    assert job.has(*GPU[backend])
    assert job.option("--device") == "auto"
    for other in jobs[1:]:  # run_study.sh goes on with the other systems
        assert other.command[:3] == job.command[:3] and other.has(*DECODE[backend])


@pytest.mark.parametrize("case", [zipvoice_stage(6, "zipvoice.bin.infer_zipvoice", "infer-epoch-12-avg-4.log"),
                                  study_synthesis, seedsvc_convert], ids=lambda c: c.__name__)
def test_inference_with_use_gpu_false(case, tmp_path):
    job, _ = first_job("sge", tmp_path, case, "--use-gpu", "false")
    assert job.has(*DECODE["sge"]) and job.has(*NO_GPU["sge"]) and not job.asks_for_a_gpu()
    assert job.option("--device") == "cpu"


def test_onnx_export_is_a_decode_cmd_job_without_a_gpu(tmp_path):
    job, _ = first_job("slurm", tmp_path, zipvoice_stage(7, "zipvoice.bin.onnx_export", "onnx_export.log"))
    assert job.has(*DECODE["slurm"]) and job.has(*NO_GPU["slurm"]) and not job.asks_for_a_gpu()


@pytest.mark.parametrize("case", [zipvoice_train, seedsvc_phase0], ids=lambda c: c.__name__)
def test_device_is_passed_through(case, tmp_path):
    job, _ = first_job("sge", tmp_path, case, "--device", "cuda:1")
    assert job.option("--device") == "cuda:1"
    assert job.has(*GPU["sge"])


def test_ddp_training_asks_for_one_gpu_per_process(tmp_path):
    job, _ = first_job("slurm", tmp_path, zipvoice_train, "--world-size", 4)
    assert job.has("--gres=gpu:4")
    assert job.option("--world-size") == "4"


@pytest.mark.parametrize("recipe", [ZIPVOICE, SEEDSVC, SONGBLOOM, ACCOMPANIMENT, SONGGENERATION],
                         ids=["zipvoice_ja", "seedsvc", "songbloom_ja", "acestep_accompaniment", "songgeneration"])
@pytest.mark.parametrize(("options", "message"), [
    (["--use-gpu", "false", "--device", "cuda"], "--device cuda needs --use-gpu true"),
    (["--device", "gpu"], "--device gpu: expected auto, cpu, cuda, cuda:N or mps"),
])
def test_bad_device_settings_fail_before_any_submission(recipe, options, message, tmp_path):
    r, jobs = submit("sge", recipe, tmp_path, "./run.sh", "--stage", 3, "--stop-stage", 4,
                     "--data-dir", tmp_path / "data", "--exp-dir", tmp_path / "exp", *options)
    assert r.returncode == 2 and message in r.stderr
    assert jobs == []


@pytest.mark.parametrize("recipe", [ZIPVOICE, SEEDSVC, SONGBLOOM, ACCOMPANIMENT, SONGGENERATION],
                         ids=["zipvoice_ja", "seedsvc", "songbloom_ja", "acestep_accompaniment", "songgeneration"])
def test_help_lists_the_gpu_options_with_their_defaults(recipe):
    r = subprocess.run(["./run.sh", "--help"], cwd=recipe, capture_output=True, text=True)
    assert r.returncode == 0
    for option, default in (("--use-gpu", "true"), ("--device", "auto")):
        # the option's entry: its line and the indented lines that continue it
        entry = re.search(rf"^  {option} .*?(?=^  --|^\S|\Z)", r.stdout, re.MULTILINE | re.DOTALL)
        assert entry, r.stdout
        assert re.search(rf"\((default: )?{default}\)$", entry.group(0).rstrip()), entry.group(0)


def test_base_model_config_is_the_packaged_one(tmp_path):
    assert not (ZIPVOICE / "conf" / "zipvoice_base.json").exists()  # one copy: the package's
    job, _ = first_job("sge", tmp_path, zipvoice_train, "--model-config", "base")
    config = Path(job.option("--model-config"))
    assert config == REPO / "zipvoice" / "configs" / "zipvoice_base.json"
    assert json.loads(config.read_text())["model"]
