#!/usr/bin/python3
"""Reference side of tests/ref/test_chat_templates.sh.

Renders chat templates with Python's jinja2 in the environment Hugging Face
transformers uses for chat templates (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, raise_exception, strftime_now and
its own tojson filter), for every (template, conversation, add_generation_prompt)
case, and writes for each case:

  OUT/NAME.ctx.json   the exact variables passed to the template (the C driver
                      renders with the same file)
  OUT/NAME.out        the rendering, when jinja2 rendered it
  OUT/NAME.raise      the message, when the template called raise_exception
  OUT/NAME.fail       the exception, when jinja2 failed otherwise

usage: render_templates.py TEMPLATE_DIR CONVERSATION_DIR OUT_DIR NOW_EPOCH
"""
import glob
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(Exception):
    pass


def make_env(now):
    def raise_exception(message):
        raise TemplateRaised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers' override: plain json.dumps, no HTML escaping
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        # transformers uses datetime.now(); a fixed instant keeps the test stable
        return datetime.fromtimestamp(now, tz=timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def contexts(conv):
    """Variables for one conversation file, with and without the generation prompt."""
    base = {}
    if conv.get("hf_defaults", True):
        # transformers always passes tools= and documents= (None when absent)
        base["tools"] = conv.get("tools")
        base["documents"] = conv.get("documents")
    else:
        for k in ("tools", "documents"):
            if k in conv:
                base[k] = conv[k]
    base["messages"] = conv["messages"]
    base["bos_token"] = "<s>"
    base["eos_token"] = "</s>"
    base.update(conv.get("extra", {}))
    for agp in (False, True):
        ctx = dict(base)
        ctx["add_generation_prompt"] = agp
        yield ("gen" if agp else "nogen"), ctx


def main():
    tdir, cdir, odir, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    env = make_env(now)
    os.makedirs(odir, exist_ok=True)
    n = 0
    for tpath in sorted(glob.glob(os.path.join(tdir, "*.jinja"))):
        tname = os.path.basename(tpath)[:-len(".jinja")]
        with open(tpath, encoding="utf-8") as f:
            template = env.from_string(f.read())
        for cpath in sorted(glob.glob(os.path.join(cdir, "*.json"))):
            cname = os.path.basename(cpath)[:-len(".json")]
            with open(cpath, encoding="utf-8") as f:
                conv = json.load(f)
            for suffix, ctx in contexts(conv):
                name = os.path.join(odir, f"{tname}__{cname}__{suffix}")
                with open(name + ".ctx.json", "w", encoding="utf-8") as f:
                    json.dump(ctx, f, ensure_ascii=False)
                try:
                    out = template.render(**ctx)
                except TemplateRaised as e:
                    with open(name + ".raise", "w", encoding="utf-8") as f:
                        f.write(str(e))
                except Exception as e:  # noqa: BLE001 - any jinja2 failure is a rejection
                    with open(name + ".fail", "w", encoding="utf-8") as f:
                        f.write(f"{type(e).__name__}: {e}")
                else:
                    with open(name + ".out", "w", encoding="utf-8", newline="") as f:
                        f.write(out)
                n += 1
    print(f"rendered {n} cases with jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()
