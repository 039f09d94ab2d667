"""Quick start (the README's): exact training curves of the RF score, the theory, and both timescales."""
import numpy as np
import rfdiff

cfg = rfdiff.RFConfig(d=32, p=1024, n=128, t=0.1, activation="tanh", seed=0)    # ψ_p = 32, ψ_n = 4
problem = rfdiff.build_problem(cfg)                      # draws W, X; exact U, V and Ũ, Ṽ
dyn = rfdiff.dynamics.from_problem(problem)              # one eigendecomposition of U
taus = np.logspace(-1, 6, 141)
sim = dyn.curves(taus)                                   # Curves: train_loss, test_loss, gen_gap, score_error
theory = rfdiff.predict(activation=cfg.activation, t=cfg.t, psi_p=cfg.psi_p, psi_n=cfg.psi_n, taus=taus)
for side, curves in (("simulation", sim), ("theory", theory.curves)):
    ts = rfdiff.timescales.extract(curves)               # the same rule on both sides
    print(f"{side}: τ_gen = {ts.tau_gen:.3g}, τ_mem = {ts.tau_mem:.3g}")
result = rfdiff.run(cfg)                                 # all of it in one call → StudyResult
print(f"rfdiff.run: τ_mem = {result.simulation.timescales.tau_mem:.3g} (simulation), "
      f"{result.theory.timescales.tau_mem:.3g} (finite-d theory)")
