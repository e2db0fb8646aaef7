"""PROVISIONAL (replaced by the rl-losses branch at merge)."""
from __future__ import annotations
import torch

def group_advantages(rewards, group_size, scale_rewards="group", eps=1e-4):
    g = rewards.view(-1, group_size)
    centered = (g - g.mean(1, keepdim=True)).view(-1)
    if scale_rewards == "group":
        std = g.std(1, keepdim=True).expand_as(g).reshape(-1)
        return centered / (std + eps)
    if scale_rewards == "batch":
        return centered / (rewards.std() + eps)
    return centered

def rloo_advantages(rewards, group_size):
    g = rewards.view(-1, group_size)
    return (g - (g.sum(1, keepdim=True) - g) / (group_size - 1)).view(-1)

def zero_std_groups(rewards, group_size):
    return rewards.view(-1, group_size).std(1) == 0

def kl_penalty(logps, ref_logps, estimator="k3"):
    d = ref_logps - logps
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d ** 2
    return torch.exp(d) - d - 1

def per_token_policy_loss(logps, old_logps, advantages, seq_index, epsilon=0.2, epsilon_high=None, ref_logps=None,
                          beta=0.0, kl_estimator="k3", importance_weights=None):
    adv = advantages[seq_index]
    ratio = torch.exp(logps - old_logps)
    hi = epsilon_high if epsilon_high is not None else epsilon
    clipped_ratio = ratio.clamp(1 - epsilon, 1 + hi)
    loss = -torch.min(ratio * adv, clipped_ratio * adv)
    clipped = (ratio * adv) > (clipped_ratio * adv)
    stats = {"ratio": ratio.detach(), "clipped": clipped.detach()}
    if importance_weights is not None:
        loss = loss * importance_weights
    if beta > 0 and ref_logps is not None:
        kl = kl_penalty(logps, ref_logps, kl_estimator)
        loss = loss + beta * kl
        stats["kl"] = kl.detach()
    return loss, stats

def aggregate(per_token_loss, seq_index, num_seqs, loss_type, max_completion_length=None):
    if loss_type == "grpo":
        sums = torch.zeros(num_seqs, dtype=per_token_loss.dtype, device=per_token_loss.device).index_add_(0, seq_index, per_token_loss)
        counts = torch.zeros(num_seqs, dtype=per_token_loss.dtype, device=per_token_loss.device).index_add_(0, seq_index, torch.ones_like(per_token_loss))
        return (sums / counts.clamp(min=1)).sum(), float((counts > 0).sum())
    if loss_type == "dr_grpo":
        return per_token_loss.sum(), float(num_seqs * max_completion_length)
    return per_token_loss.sum(), float(per_token_loss.numel())

def truncated_importance_weights(trainer_logps, generator_logps, cap):
    return torch.exp(trainer_logps - generator_logps).clamp(max=cap).detach()
