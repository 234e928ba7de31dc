"""What the command parsers share: defaults read from the functions they call
(one source: the signature) and the optimiser-recipe options.

The signature is read from the module's source (``ast``), not by importing it,
so building the parser (``tasklle --help``) does not load torch."""
import ast
import importlib.util


def signature_defaults(module, function):
    """``{parameter: default}`` of ``module.function`` for every literal default."""
    spec = importlib.util.find_spec(module)
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            out = {}
            for arg, d in pairs:
                try:
                    out[arg.arg] = ast.literal_eval(d)
                except ValueError:  # not a literal: the caller states its own default
                    pass
            return out
    raise LookupError(f"{module} has no function {function}")


def grad_clip_arg(value):
    """The trainers' ``grad_clip`` for a --grad-clip value: not given -> 'recipe', 0 -> None (no clipping)."""
    if value is None:
        return "recipe"
    return value if value > 0 else None


def add_optimiser_args(p, defaults):
    """--lr (default from ``defaults``), --recipe, --weight-decay, --grad-clip (``tasklle.train.recipes``)."""
    p.add_argument("--lr", type=float, default=defaults["lr"], help=f"Adam learning rate ({defaults['lr']:g})")
    p.add_argument("--recipe", default="method", choices=("method", "zero-dce++"),
                   help="optimiser recipe: method = the report's Adam with default parameters (no weight decay, "
                        "no clipping; default); zero-dce++ = the official Zero-DCE++ script's weight decay 1e-4 "
                        "and gradient-norm clip 0.1")
    p.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (default: the recipe's)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="gradient-norm clip, 0 = none (default: the recipe's)")


def module_constant(module, name):
    """The literal value of a module-level constant ``NAME = ...``, read from the source."""
    spec = importlib.util.find_spec(module)
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module} has no constant {name}")
