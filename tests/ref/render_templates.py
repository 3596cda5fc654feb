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

It also writes OUT/cases.tsv, the batch list for `jinja_render --batch`.

usage: render_templates.py render TEMPLATE_DIR CONVERSATION_DIR OUT_DIR NOW_EPOCH
       render_templates.py compare OUT_DIR
The compare step checks the C driver's PREFIX.c.{out,err,rc} against the
reference files: byte-identical output, or a rejection by both (exit code 2
with the same raise_exception message, or 1 for any other jinja2 failure).
"""
import difflib
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


def render(tdir, cdir, odir, now):
    env = make_env(now)
    os.makedirs(odir, exist_ok=True)
    batch = []
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
                batch.append(f"{tpath}\t{name}.ctx.json\t{name}\n")
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
    with open(os.path.join(odir, "cases.tsv"), "w", encoding="utf-8") as f:
        f.writelines(batch)
    print(f"rendered {n} cases with jinja2 {jinja2.__version__}")


def read(path, binary=False):
    with open(path, "rb" if binary else "r", **({} if binary else {"encoding": "utf-8"})) as f:
        return f.read()


def compare(odir):
    passed = failed = rejected = 0
    with open(os.path.join(odir, "cases.tsv"), encoding="utf-8") as f:
        prefixes = [line.rstrip("\n").split("\t")[2] for line in f if line.strip()]
    for p in prefixes:
        name = os.path.basename(p)
        try:
            rc = int(read(p + ".c.rc"))
            got, err = read(p + ".c.out", True), read(p + ".c.err")
        except (OSError, ValueError):
            print(f"FAIL {name}: the C driver left no result")
            failed += 1
            continue
        problem = None
        if os.path.exists(p + ".out"):
            want = read(p + ".out", True)
            if rc != 0:
                problem = f"jinja2 rendered it, ours failed (rc={rc}): {err.strip()}"
            elif got != want:
                diff = difflib.unified_diff(want.decode("utf-8", "replace").splitlines(True),
                                            got.decode("utf-8", "replace").splitlines(True),
                                            "jinja2", "ours", n=1)
                problem = "output differs from jinja2\n" + "".join(list(diff)[:30])
        elif os.path.exists(p + ".raise"):
            want = read(p + ".raise")
            if rc != 2:
                problem = f"jinja2 raised {want!r}, ours gave rc={rc}: {err.strip()}"
            elif want not in err:
                problem = f"raise message differs: want {want!r}, got {err.strip()!r}"
        elif rc != 1:
            problem = f"jinja2 failed ({read(p + '.fail')}), ours gave rc={rc}"
        if problem:
            print(f"FAIL {name}: {problem}")
            failed += 1
        else:
            passed += 1
            rejected += not os.path.exists(p + ".out")
    print(f"chat templates: {passed} passed ({rejected} of them rejected by both), "
          f"{failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "render":
        render(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) == 3 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2]))
    else:
        sys.exit(__doc__)
