# path.sh: the environment of this recipe. Sourced from egs/songgeneration by run.sh and by the
# job scripts of utils/queue.pl and utils/slurm.pl, so cluster nodes get the same tools and
# the same Python as the machine the recipe was started on.

SHIRABE_ROOT=$(cd ../.. && pwd)
export SHIRABE_ROOT

# The repository's virtual environment (tools/install.sh creates it), when there is one.
if [ -x "$SHIRABE_ROOT/.venv/bin/python" ]; then
  export VIRTUAL_ENV="$SHIRABE_ROOT/.venv"
  export PATH="$VIRTUAL_ENV/bin:$PATH"
fi
export PATH="$SHIRABE_ROOT/utils:$PATH"
export PYTHONPATH="$SHIRABE_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONIOENCODING=UTF-8
export LC_ALL=C.UTF-8
