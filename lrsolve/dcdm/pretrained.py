"""Pretrained DCDM weights shipped in ``lrsolve/data/`` (``lr.dcdm.load_pretrained``)."""
from __future__ import annotations

from typing import Any

__all__ = ["load_pretrained", "PRETRAINED"]

# name -> (file in lrsolve/data, what it is)
PRETRAINED = {
    "poisson2d": ("dcdm_poisson2d_mg.pt",
                  "2D, VCycleNet (learned shared smoothers in a V-cycle on the operator's GMG "
                  "hierarchy), trained at 64x64 on the Dirichlet square and closed / open-top "
                  "boxes with random obstacles, a coefficient field and a rectangle - the "
                  "default"),
    "poisson3d": ("dcdm_poisson3d_mg.pt",
                  "3D, VCycleNet on the GMG hierarchy, trained at 32^3 on the Dirichlet cube "
                  "and closed / open-top boxes with random obstacles, a coefficient field and "
                  "a rectangular box - the default for 3D"),
    "poisson2d-paper": ("dcdm_poisson2d.pt",
                        "2D Poisson, trained at 64x64: the paper's network, 2500 steps (50 min "
                        "of one CPU thread on a loaded machine)"),
    "poisson2d-20min": ("dcdm_poisson2d_20min.pt",
                        "2D Poisson, trained at 64x64: the paper's network, one fresh "
                        "19.5-minute run on one CPU thread"),
    "poisson2d-multilevel": ("dcdm_poisson2d_multilevel.pt",
                             "2D Poisson, trained at 64x64: four-level shared-weight variant "
                             "(levels=4, shared=True), one 17-minute CPU run (784 steps)"),
}


def load_pretrained(name: str = "poisson2d", device: Any = None):
    """Load a shipped DCDM model.

    Parameters
    ----------
    name : str
        One of ``lr.dcdm.PRETRAINED``: ``"poisson2d"`` (default, the V-cycle network),
        ``"poisson3d"`` (the same architecture in 3D), ``"poisson2d-paper"``,
        ``"poisson2d-20min"``, ``"poisson2d-multilevel"`` (the paper's network and its
        variants, trained on the Dirichlet square only).
    device : str or torch.device, optional
        Where to put the weights (``"cuda"`` keeps a GPU solve on the GPU).

    The file is checked against ``lrsolve/data/SHA256SUMS`` and loaded as data
    (``torch.load(weights_only=True)``); a corrupt or modified file is a ``ValueError``.

    Returns
    -------
    DCDMNet or VCycleNet
        In eval mode; ``model.meta`` records how it was trained.

    Examples
    --------
    >>> import lrsolve as lr
    >>> model = lr.dcdm.load_pretrained("poisson2d")
    >>> model.dim
    2
    """
    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {sorted(PRETRAINED)}, got {name!r}; "
                         "train a model with lr.dcdm.train(dim=...)")
    from ..io import shipped_file
    from .training import load_model
    device = check_device(device)
    path, digest = shipped_file(PRETRAINED[name][0])
    model = load_model(path, sha256=digest)
    if device is not None:
        model = model.to(device)
    return model


def check_device(device: Any):
    """``device`` as a ``torch.device`` (None passes); see :func:`lrsolve.backend.torch_device`."""
    from ..backend import torch_device
    return torch_device(device)
