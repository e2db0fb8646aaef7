"""`alignline config show RECIPE [key=value ...]`: the recipe as it will run, every default filled in."""

from __future__ import annotations


def show(args) -> int:
    import yaml

    from alignline.config import load_config, to_dict

    print(
        yaml.safe_dump(to_dict(load_config(args.recipe, args.overrides)), sort_keys=False, allow_unicode=True), end=""
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("config", help="inspect recipes: alignline config show recipe.yaml key=value ...")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    s = csub.add_parser("show", help="print the resolved recipe (defaults filled in, overrides applied) as YAML")
    s.add_argument("recipe", help="recipe YAML")
    s.add_argument("overrides", nargs="*", help="key=value overrides, as for alignline train")
    s.set_defaults(func=show)
