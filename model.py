"""EF regressor: ResNet-18 on every frame, mean over frames (the design card's), or EchoNet-Dynamic's
R(2+1)D-18 over the clip; a linear head 512 -> 1 (EF in percent) on either."""
import contextlib
import pickle
import sys

import torch
import torch.nn as nn
import torchvision

from cli import ConfigError
from storage import folders


VIDEO = "r2plus1d_18"  # config.MODEL's video network; the other, "resnet18_frames", sees one frame at a time
CONVS, NORMS = (nn.Conv2d, nn.Conv3d), (nn.BatchNorm2d, nn.BatchNorm3d)  # the layers either network prunes
# each network: its torchvision name, its pretrained weights' data and enum, the torchvision module of both
WEIGHTS = {"resnet18_frames": ("resnet18", "ImageNet", "ResNet18_Weights", "IMAGENET1K_V1",
                               torchvision.models),
           VIDEO: ("r2plus1d_18", "Kinetics-400", "R2Plus1D_18_Weights", "KINETICS400_V1",
                   torchvision.models.video)}


class EFRegressionModel(nn.Module):
    def __init__(self, initial_ef=55.0, ef_scale=1.0, arch="resnet18_frames"):
        super().__init__()
        self.arch = arch
        name, *_, models = WEIGHTS[arch]
        self.backbone = getattr(models, name)(weights=None)
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(512, 1)
        # The head predicts EF in units of ef_scale (the training set's EF std): Adam moves every
        # weight by about the learning rate per step, so a head in percent points needs 10x larger
        # weights than one in standard deviations, and short runs stopped before reaching them.
        self.register_buffer("ef_scale", torch.tensor(float(ef_scale)))
        # Start at the training-set mean EF: a head at 0 spends the first epochs only finding the
        # mean, which is why the reference never got below the mean predictor.
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.constant_(self.head.bias, initial_ef / ef_scale)

    def forward(self, video):
        """video: (B, T, 3, H, W) -> EF (B,)"""
        b, t = video.shape[:2]
        if self.arch == VIDEO:  # the clip is one input (B, 3, T, H, W): one feature vector per video
            pooled = self.backbone(video.transpose(1, 2)).unsqueeze(1)
        else:
            pooled = self.backbone(video.flatten(0, 1)).view(b, t, -1)  # (B*T, C) -> (B, T, C)
        # The head and the EF scale in fp32 even under autocast: in bf16 every prediction (and with it the
        # distillation targets and the sensitivity's MAEs) would land on a grid of 0.25-0.5 EF points.
        if pooled.dtype != torch.float32:  # only then: an fp32 export keeps its graph (no Cast node)
            pooled = pooled.float()
        with full_precision(video.device):
            return self.head(pooled.mean(1)).squeeze(-1) * self.ef_scale


def memory_format(model, channels_last):
    """channels_last (its 3D form for the video network's 5-D weights) when asked, else as they are."""
    if not channels_last:
        return torch.preserve_format
    return torch.channels_last_3d if getattr(model, "arch", None) == VIDEO else torch.channels_last


def full_precision(device):
    """Autocast switched off where it is on (a model traced for ONNX, or on the meta device, is left as
    it is)."""
    on = device.type in ("cuda", "cpu") and torch.is_autocast_enabled(device.type)
    return torch.autocast(device.type, enabled=False) if on else contextlib.nullcontext()


def load_pretrained(model, pretrained=True, path=None):
    """Put ImageNet (ResNet-18) or Kinetics-400 (R(2+1)D-18) weights in the backbone. Returns (used,
    reason): offline is a warning, not a crash."""
    name, data, weights_class, weights_name, models = WEIGHTS[model.arch]
    if path:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        except (OSError, RuntimeError, AttributeError, pickle.UnpicklingError) as e:
            raise ConfigError(f"--pretrained-path {path} cannot be read as a state_dict ({e}); give a "
                              f"{name} state_dict saved with torch.save, or none") from None
        try:
            missing, unexpected = model.backbone.load_state_dict(state, strict=False)
        except RuntimeError as e:  # a layer of the same name and another shape
            missing, unexpected = [str(e).splitlines()[-1].strip()], []
        if missing or unexpected:  # another network's weights would load nothing, silently
            raise ConfigError(f"--pretrained-path {path} is not a {name} state_dict ({len(missing)} of "
                              f"{name}'s weights missing or of another shape, e.g. {missing[:1]}; "
                              f"{len(unexpected)} not {name}'s, e.g. {unexpected[:1]}); give --model's "
                              f"backbone weights")
        return True, f"loaded from {path}"
    if not pretrained:
        return False, "PRETRAINED is off"
    try:
        weights = getattr(getattr(models, weights_class), weights_name)
        state = weights.get_state_dict(progress=False)
    except Exception as e:  # no network, proxy, corrupt download: all end the same way
        reason = f"{data} weights could not be downloaded ({type(e).__name__}: {str(e)[:120]})"
        print(f"WARNING: {reason}; training {name} from random initialisation. Set PRETRAINED_PATH "
              f"to a local {name} state_dict to use {data} weights offline.", file=sys.stderr, flush=True)
        return False, reason
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    model.backbone.load_state_dict(state, strict=False)
    return True, f"torchvision {weights_class}.{weights_name}"


def match_shapes(model, state_dict):
    """Resize conv/BN/linear layers to the shapes in state_dict: rebuilds a channel-pruned model
    from its weights alone, so checkpoints need no pickled code."""
    for name, module in model.named_modules():
        weight = state_dict.get(f"{name}.weight" if name else "weight")
        if weight is None:
            continue
        if isinstance(module, CONVS):
            module.out_channels = weight.shape[0]
            module.in_channels = weight.shape[1] * module.groups
        elif isinstance(module, NORMS):
            module.num_features = weight.shape[0]
            for buffer in ("running_mean", "running_var"):
                setattr(module, buffer, torch.zeros(weight.shape[0]))
        elif isinstance(module, nn.Linear):
            module.out_features, module.in_features = weight.shape
        else:
            continue
        module.weight = nn.Parameter(torch.empty_like(weight))
        if module.bias is not None:
            module.bias = nn.Parameter(torch.empty_like(state_dict[f"{name}.bias"]))
    return model


def arch_of(state_dict):
    """The network a state_dict holds, by its layers (R(2+1)D's stem), so checkpoints need no setting."""
    return VIDEO if "backbone.stem.0.weight" in state_dict else "resnet18_frames"


def save_atomic(obj, path):
    """torch.save to a temporary file, then rename: a kill never leaves a truncated file, a full disk is
    folders.WriteFailed."""
    folders.write_atomic(path, lambda tmp: torch.save(obj, tmp), failures=(OSError, RuntimeError))


def save_checkpoint(path, model, **info):
    """Weights plus plain metadata (method, ratio, configuration...), written atomically."""
    save_atomic({"state_dict": model.state_dict(), "info": info}, path)


def load_checkpoint(path, device="cpu"):
    """Rebuild any model the experiment saved (dense, masked-then-permanent or channel-pruned), on
    `device`."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    # saved before the EF scale existed
    state = checkpoint["state_dict"]
    state.setdefault("ef_scale", torch.tensor(1.0, device=device))
    with torch.device("meta"):  # no random initialisation (0.2 s a model): every tensor comes from the file
        model = match_shapes(EFRegressionModel(arch=arch_of(state)), state)
    model.load_state_dict(state, assign=True)
    return model, checkpoint["info"]
