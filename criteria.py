"""The field's channel importance criteria for coupled removal, from Torch-Pruning (the group forms, summed
over each coupled group like structured_physical's L2), and layer-adaptive magnitude (LAMP) for single
weights, each the chooser of a method in methods.py's table (structured_physical_<criterion>,
unstructured_lamp). Gradient criteria (Taylor, Hessian) read the loss on CRITERION_BATCHES training batches
only, never validation or test: the channels a model loses must not depend on the videos it is judged on.

taylor   first order: |w · dL/dw| (Molchanov et al. 2019), GroupTaylorImportance
hessian  second order, OBD-style: w² times the mean over the videos of each one's squared gradient (a
         diagonal Fisher), GroupHessianImportance's score. Its own accumulate_grad (Torch-Pruning
         1.6.1) keeps only the last video's: it looks its sums up by name but stores them by parameter,
         so each video's replaces the one before and the count stays 1. The mean is taken here and
         handed to it as the weights' gradients, which it reads when it has accumulated nothing.
bnscale  network slimming's |gamma| of the BatchNorm after each conv (Liu et al. 2017), BNScaleImportance
fpgm     the filters nearest the geometric median of their layer's (He et al. 2019), FPGMImportance
lamp     layer-adaptive magnitude (Lee et al. 2021): each weight's square over the sum of the squares of
         its layer's larger weights, so that layers are compared on one scale; LAMPImportance for groups
"""
import torch
import torch_pruning as tp

import prune_utils

IMPORTANCES = {"taylor": tp.importance.GroupTaylorImportance, "hessian": tp.importance.GroupHessianImportance,
               "bnscale": tp.importance.BNScaleImportance, "fpgm": tp.importance.FPGMImportance,
               "lamp": tp.importance.LAMPImportance}
GRADIENTS = ("taylor", "hessian")


def loss_gradients(model, batches, count, squared=False):
    """The MSE loss's gradients on the first `count` training batches, summed in each weight's .grad; with
    `squared` (the Hessian criterion), the mean over those videos of each one's squared gradient instead.
    The model in eval mode, so BatchNorm's running statistics stay as they are; fp32."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    model.zero_grad()
    sums, videos = {}, 0
    for seen, (video, ef) in enumerate(batches):
        if seen >= count:
            break
        predicted = model(video.to(device)).float()
        errors = (predicted - ef.to(device).float()) ** 2
        if not squared:
            errors.mean().backward()
            continue
        for i in range(len(errors)):  # the Hessian criterion's squared gradients are per video
            model.zero_grad()
            errors[i].backward(retain_graph=i < len(errors) - 1)
            for p in model.parameters():
                if p.grad is not None:
                    sums[p] = sums.get(p, 0) + p.grad.detach() ** 2
            videos += 1
    for p, total in sums.items():
        p.grad = total / videos
    model.train(was_training)


def coupled_removed_by(criterion):
    """The chooser of coupled removal by `criterion`: structured_physical's groups, counts and rounding,
    only the importance differs. A gradient criterion reads its gradients before every step."""
    def choose(model, ratio, setting):
        importance = IMPORTANCES[criterion]()
        pruner = prune_utils.physical_pruner(model, ratio, setting.num_frames, setting.image_size,
                                             setting.round_to, setting.steps, importance=importance)

        def prune(target):
            if criterion in GRADIENTS:
                loss_gradients(model, setting.batches, setting.batch_count, squared=criterion == "hessian")
            pruner.step()
            model.zero_grad(set_to_none=True)
        return prune, {}
    choose.__name__ = f"coupled_removed_by_{criterion}"
    return choose


taylor_removed, hessian_removed, bnscale_removed, fpgm_removed, lamp_removed = (
    coupled_removed_by(c) for c in ("taylor", "hessian", "bnscale", "fpgm", "lamp"))


def lamp_scores(weight):
    """LAMP's score of each weight of one layer: w² / (the sum of w'² over the weights w' at least as large
    in magnitude), so that the smallest scores of different layers are comparable."""
    squares = weight.detach().flatten() ** 2
    ordered, index = torch.sort(squares)
    tails = torch.flip(torch.cumsum(torch.flip(ordered, [0]), 0), [0])  # sum of this and every larger one
    scores = torch.empty_like(squares)
    scores[index] = ordered / tails.clamp_min(torch.finfo(squares.dtype).tiny)
    return scores.view_as(weight)


def lamp_weights(model, ratio, setting):
    """The chooser of unstructured_lamp: global L1's masks, ranked by LAMP's score instead of |w| (a weight
    already masked scores 0: only the weights still there are chosen from, as global L1 does)."""
    def prune(target):
        prune_utils.unstructured(model, target, scope=setting.scope, scores=lamp_scores)
    return prune, {}
