# cmd.sh: how this recipe runs its heavy steps. run.sh sources it (". ./cmd.sh") and passes
# $train_cmd, $decode_cmd or $cuda_cmd down, e.g.
#   $train_cmd JOB=1:$nj exp/log/feats.JOB.log <program> ... --part JOB
#
# Choose the backend with cmd_backend (environment or edit below):
#   local   utils/run.pl    run on this machine (the default)
#   sge     utils/queue.pl  GridEngine; flags come from conf/queue.conf
#   slurm   utils/slurm.pl  Slurm; flags come from conf/slurm.conf
#
# All three accept the same options, so a command line works with every backend:
#   --mem 4G            memory per task (per slot/CPU on clusters; ignored by run.pl)
#   --gpu 1             GPUs per task (run.pl: sets the default --max-jobs-run to the GPU count)
#   --num-threads 8     CPU threads per task
#   --max-jobs-run 10   at most this many tasks at a time (clusters: array jobs only)
#   --time 4:00:00      run-time limit (ignored by run.pl)
# The cluster backends translate each "--name value" through their conf/*.conf file; an
# option the file does not describe is an error there. See "utils/queue.pl --help".
#
# run.sh runs tokenizer training, data preparation and training as $cuda_cmd jobs, generation
# and evaluation as $decode_cmd jobs, adding "--gpu N" (N = 0 with --use-gpu false; an option
# given twice takes its last value) and passing --device to the binaries; data preparation runs
# as $train_cmd.

cmd_backend=${cmd_backend:-local}

case "$cmd_backend" in
  local)
    train_cmd="utils/run.pl"
    decode_cmd="utils/run.pl --mem 4G"
    cuda_cmd="utils/run.pl --gpu 1"
    ;;
  sge)
    train_cmd="utils/queue.pl"
    decode_cmd="utils/queue.pl --mem 4G"
    cuda_cmd="utils/queue.pl --gpu 1"
    ;;
  slurm)
    train_cmd="utils/slurm.pl"
    decode_cmd="utils/slurm.pl --mem 4G"
    cuda_cmd="utils/slurm.pl --gpu 1"
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '$cmd_backend' (expected local, sge or slurm)" >&2
    return 1 2>/dev/null || exit 1
    ;;
esac
export train_cmd decode_cmd cuda_cmd
