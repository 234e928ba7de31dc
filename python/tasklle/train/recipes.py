"""Optimiser recipes shared by joint and upstream training.

- ``'method'`` (the default): the report's "Adam using default parameters",
  i.e. betas (0.9, 0.999), eps 1e-8, no weight decay, no gradient clipping
  (the learning rate is set separately: the report's 1e-4).
- ``'zero-dce++'``: the official Zero-DCE++ training script's recipe, Adam
  with weight decay 1e-4 and a gradient-norm clip of 0.1.

The report draws conv weights from N(0, 0.02); the official Zero-DCE++ script
keeps PyTorch's default init. ``init_std`` (the trainings' argument) is the
report's choice, independent of the recipe.
"""

RECIPES = {
    "method": {"weight_decay": 0.0, "grad_clip": None},
    "zero-dce++": {"weight_decay": 1e-4, "grad_clip": 0.1},
}
# accepted spellings
_ALIASES = {"zero_dce_pp": "zero-dce++", "zero-dce-pp": "zero-dce++", "adam": "method"}


def resolve_recipe(recipe, weight_decay, grad_clip):
    """(name, weight_decay, grad_clip): a recipe's values unless the caller gave its own
    (``None`` for weight_decay means "the recipe's"; grad_clip ``'recipe'`` likewise)."""
    from .run import check_float, check_grad_clip

    name = _ALIASES.get(recipe, recipe) if isinstance(recipe, str) else recipe
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    r = RECIPES[name]
    wd = r["weight_decay"] if weight_decay is None else check_float(weight_decay, "weight_decay")
    gc = r["grad_clip"] if isinstance(grad_clip, str) and grad_clip == "recipe" else check_grad_clip(grad_clip)
    return name, wd, gc


def describe(name, lr, weight_decay, grad_clip):
    """A one-line description of the optimiser, for logs and results.json."""
    clip = "no gradient clipping" if grad_clip is None else f"gradient-norm clip {grad_clip:g}"
    return (f"Adam(lr={lr:g}, betas=(0.9, 0.999), weight_decay={weight_decay:g}), {clip} "
            f"(recipe '{name}')")
