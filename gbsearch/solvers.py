"""Names of the samplers :func:`gbsearch.diffusion.schedule.make_scheduler` builds (outside the
diffusion package and without imports,
so that the campaign configuration checks a name without loading torch and diffusers).

  dpm3-singlestep  DPM-Solver-3 single-step (the paper's solver; exactly `steps` evaluations)
  dpm2m            DPM-Solver++ 2M multistep
  unipc            UniPC-3 multistep with its corrector (Zhao et al. 2023): reuses earlier
                   evaluations, the usual choice below ~10 steps
  ddim             first-order steps (DDIM = DPM-Solver++(1)): what a distilled student is
                   sampled with, at the time points it was trained on
"""
SOLVERS = ("dpm3-singlestep", "dpm2m", "unipc", "ddim")
