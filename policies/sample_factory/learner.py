"""A Sample Factory 2.1.1 ``Learner`` that adds VPT's KL-to-the-frozen-prior loss and resumes safely.

* **KL to the prior** (VPT paper, RL fine-tuning): ``rho_i * KL(pi_prior || pi_theta)`` summed over the
  buttons and camera heads and averaged over valid samples, with ``rho_i = kl_coef * kl_decay ** i`` where
  ``i`` counts training iterations (one per SF batch; the paper uses rho = 0.2, decay 0.9995). The prior's
  log-probs come from the actor-critic (:meth:`VPTActorCritic.prior_log_probs`), which runs the frozen
  prior alongside the policy on the same frames, from the prior's own memory kept in the second half of
  SF's flat state. The term is added to the actor loss (SF's ``exploration_loss`` slot, which it replaces
  in the paper) and logged to TensorBoard as ``train/kl_prior``, ``train/kl_prior_coef`` and
  ``train/kl_prior_loss``. ``i`` is saved in SF checkpoints so the schedule continues on resume.
* **Resume**: SF 2.1.1 calls ``torch.load`` without ``weights_only`` and, under torch >= 2.6, a failing load is
  logged and training silently restarts from scratch. Here checkpoints are written with plain Python numbers
  only and loaded with ``weights_only=True``; a checkpoint that exists but cannot be loaded is an error.

SF builds the learner from the module global ``sample_factory.algo.learning.learner_worker.Learner``;
:func:`install_vpt_learner` points it at :class:`VPTLearner` (the learner object is created in the main
process and pickled into the learner process, so the class only has to be importable there).
"""
from __future__ import annotations

import torch
from sample_factory.algo.learning.learner import Learner
from sample_factory.algo.utils.torch_utils import masked_select
from sample_factory.utils.utils import log

from vpt_rl.model import kl_coef_at, kl_divergence


def kl_prior_coef(kl_coef: float, kl_decay: float, iteration: int) -> float:
    """The KL coefficient after ``iteration`` training iterations (:func:`vpt_rl.model.kl_coef_at`)."""
    return kl_coef_at(kl_coef, kl_decay, iteration)


def kl_prior_per_sample(prior_logp: torch.Tensor, policy_logp: torch.Tensor, splits) -> torch.Tensor:
    """``KL(prior || policy)`` per row, summed over the heads (:func:`vpt_rl.model.kl_divergence`).

    :param prior_logp: (N, sum(splits)) log-probs of the frozen prior (no gradient needed)
    :param policy_logp: (N, sum(splits)) log-probs of the trained policy
    :param splits: sizes of the heads, e.g. ``(8641, 121)``
    """
    return kl_divergence(torch.split(prior_logp, list(splits), 1), torch.split(policy_logp, list(splits), 1))


class VPTLearner(Learner):
    """SF ``Learner`` with the KL-to-prior loss, its coefficient schedule, and a safe resume."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_iteration = 0

    # ---------------------------------------------------------------- KL to the frozen prior
    def current_kl_coef(self) -> float:
        return kl_prior_coef(getattr(self.cfg, "kl_coef", None) or 0.0, getattr(self.cfg, "kl_decay", 1.0), self.kl_iteration)

    def _calculate_losses(self, mb, num_invalids: int):
        (action_distribution, policy_loss, exploration_loss, kl_old, kl_loss, value_loss, loss_summaries) = (
            super()._calculate_losses(mb, num_invalids)
        )
        prior_logp = self.actor_critic.prior_log_probs() if hasattr(self.actor_critic, "prior_log_probs") else None
        if prior_logp is not None:
            policy_logp = torch.cat([d.log_probs for d in action_distribution.distributions], dim=1)
            kl = kl_prior_per_sample(prior_logp, policy_logp, action_distribution.logit_lengths)
            kl_mean = masked_select(kl, mb.valids, num_invalids).mean()
            coef = self.current_kl_coef()
            kl_prior_loss = coef * kl_mean
            exploration_loss = exploration_loss + kl_prior_loss
            loss_summaries.update(kl_prior=kl_mean.detach(), kl_prior_coef=coef, kl_prior_loss=kl_prior_loss.detach())
        return action_distribution, policy_loss, exploration_loss, kl_old, kl_loss, value_loss, loss_summaries

    def _record_summaries(self, train_loop_vars):
        stats = super()._record_summaries(train_loop_vars)
        for key in ("kl_prior", "kl_prior_coef", "kl_prior_loss"):
            if key in train_loop_vars:
                value = train_loop_vars[key]
                stats[key] = float(value.item()) if torch.is_tensor(value) else float(value)
        return stats

    def train(self, batch):
        stats = super().train(batch)
        if stats is not None:
            self.kl_iteration += 1
        return stats

    # ---------------------------------------------------------------- checkpoints
    def _get_checkpoint_dict(self):
        ckpt = super()._get_checkpoint_dict()
        # plain Python numbers only, so that torch.load(weights_only=True) accepts the file
        ckpt["best_performance"] = float(ckpt["best_performance"])
        ckpt["curr_lr"] = float(ckpt["curr_lr"])
        ckpt["train_step"] = int(ckpt["train_step"])
        ckpt["env_steps"] = int(ckpt["env_steps"])
        ckpt["vpt_kl_iteration"] = int(self.kl_iteration)
        return ckpt

    def _load_state(self, checkpoint_dict, load_progress=True):
        super()._load_state(checkpoint_dict, load_progress=load_progress)
        if load_progress:
            self.kl_iteration = int(checkpoint_dict.get("vpt_kl_iteration", 0))

    @staticmethod
    def load_checkpoint(checkpoints, device):
        """Load the newest checkpoint with ``weights_only=True``; raise instead of silently starting over."""
        if len(checkpoints) <= 0:
            log.warning("No checkpoints found")
            return None
        latest = checkpoints[-1]
        log.warning("Loading state from checkpoint %s...", latest)
        try:
            return torch.load(latest, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001  (re-raised with the path and the way out)
            raise RuntimeError(
                f"could not load Sample Factory checkpoint {latest!r} with torch.load(weights_only=True): {exc}. "
                f"Refusing to silently restart from scratch; move the checkpoint away (or use "
                f"--restart_behavior=overwrite) to start over."
            ) from exc


def install_vpt_learner() -> None:
    """Make SF build :class:`VPTLearner` (patches ``sample_factory.algo.learning.learner_worker.Learner``)."""
    import sample_factory.algo.learning.learner_worker as learner_worker  # lazy: SF's worker module, only when training


    learner_worker.Learner = VPTLearner

