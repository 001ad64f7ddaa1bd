#!/usr/bin/env python3
"""Generate tests/fixtures/panther/catalog/<RuleID>.json from Panther's public detections.

One-off generator: it reads the Kubernetes / EKS rules of panther-labs/panther-analysis
(Apache-2.0), keeps their unit-test events that are Amazon EKS audit events, runs Panther's
own Python rule code on each of them and records what Panther would produce (rule result,
title, dedup, severity, unique, alert_context). The Rust rules are checked against these files.

Usage:
    python3 scripts/panther-fixtures.py <panther-analysis> tests/fixtures/panther/catalog [--rev REV]

<panther-analysis> is either
  * a work tree (a directory that contains rules/ and global_helpers/): used as it is, or
  * a git directory, bare or not (e.g. a mirror with no work tree): the needed paths
    (rules/aws_eks_rules, rules/kubernetes_rules, global_helpers, data_models) are taken from
    REV (default HEAD) with `git archive` and unpacked into a temporary directory.
The commit used is printed on the first line of the output.

Needs Python 3.11+ and PyYAML. python-dateutil is used when installed (panther_base_helpers
imports it; none of these rules calls it), otherwise a stub stands in. boto3 is always a stub:
panther_aws_helpers imports it, but the EKS rules only use eks_panther_obj_ref.

Panther semantics emulated (see README.md next to the fixtures for the field meanings):
  * The event is PantherEvent-like: a read-only dict subclass; nested objects/arrays come back
    as read-only wrappers on access (as Panther's immutable containers do, including their
    repr); a missing top-level key is looked up case-insensitively; .deep_get, .deep_walk,
    .udm and .to_dict are provided.
  * .udm(name): like the panther-analysis test runner, the data model is chosen by the
    event's p_log_type; data_models/aws_eks_data_model.yml applies to "Amazon.EKS.Audit".
    A mapped name resolves its `$.a.b.c` path (None when missing). An unmapped name, or an
    event without a data model, falls back to p_udm.<name>, then to the top-level field.
  * Global helpers are the real files from the checkout. Enrichment helpers (ipinfo, MISP,
    Tor exit nodes) read p_enrichment in the event: with no p_enrichment in the log they
    find nothing, exactly as with no enrichment data configured. Any test whose evaluation
    looked at p_enrichment is marked "enrichment": true.
  * rule() must return a bool. title() must return a str (on error: DisplayName, else RuleID;
    no title(): DisplayName, else RuleID). dedup() must return a str (on error or empty:
    "defaultDedupString:<RuleID>"; no dedup(): the title). Titles and dedups longer than 1000
    characters are cut to 985 + "... (truncated)". severity() is upper-cased; "DEFAULT" or a
    failure gives the YAML Severity. unique() must return a str or None (same 1000 limit).
    alert_context() must return a mapping and is serialised with json.dumps(default=str).
    Cross-checked once against the panther_core engine itself: all kept tests agreed.
"""
import argparse
import copy
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import types
from collections.abc import Mapping

import yaml

RULE_DIRS = ("rules/aws_eks_rules", "rules/kubernetes_rules")
NEEDED = RULE_DIRS + ("global_helpers", "data_models")
EKS_LOG_TYPE = "Amazon.EKS.Audit"
K8S_AUDIT_KEYS = ("kind", "verb", "user", "objectRef", "requestURI", "auditID", "stage")
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
MAX_FIELD = 1000  # Panther's limit for title and dedup strings
TRUNCATED = "... (truncated)"


# --------------------------------------------------------------------------- checkout


def materialise(src, rev, tmp):
    """Return (root directory holding NEEDED, commit hash) for a work tree or a git dir."""
    if os.path.isdir(os.path.join(src, "rules")) and os.path.isdir(os.path.join(src, "global_helpers")):
        try:
            commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown (not a git work tree)"
        return src, commit
    git = ["git", "--git-dir", src]
    commit = subprocess.run(git + ["rev-parse", "--verify", rev + "^{commit}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    data = subprocess.run(git + ["archive", "--format=tar", commit, "--", *NEEDED], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp, commit


# --------------------------------------------------------------------------- stubs


def install_stubs():
    """Stub the heavy third-party modules the global helpers import at module level."""
    boto3 = types.ModuleType("boto3")

    def _no_aws(*_a, **_k):
        raise RuntimeError("boto3 is stubbed: no AWS calls while generating fixtures")

    boto3.client = boto3.resource = boto3.Session = _no_aws
    sys.modules["boto3"] = boto3
    try:
        import dateutil.parser  # noqa: F401  (real module when installed)
    except ImportError:
        dateutil = types.ModuleType("dateutil")
        parser = types.ModuleType("dateutil.parser")

        class ParserError(ValueError):
            pass

        def parse(*_a, **_k):
            raise ParserError("dateutil is stubbed")

        parser.ParserError, parser.parse = ParserError, parse
        dateutil.parser = parser
        sys.modules["dateutil"], sys.modules["dateutil.parser"] = dateutil, parser


# --------------------------------------------------------------------------- event


def _wrap(value):
    if type(value) is dict:
        return FrozenDict(value)
    if type(value) is list:
        return FrozenList(value)
    return value


def _immutable(self, *_a, **_k):
    raise TypeError(f"'{type(self).__name__}' object is immutable")


class FrozenList(list):
    """Read-only list; elements come back wrapped. repr follows Panther's ImmutableList."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _immutable
    append = extend = insert = pop = remove = clear = sort = reverse = _immutable

    def __getitem__(self, i):
        v = list.__getitem__(self, i)
        return FrozenList(v) if isinstance(i, slice) else _wrap(v)

    def __iter__(self):
        return (_wrap(v) for v in list.__iter__(self))

    def copy(self):
        return copy.deepcopy(list(list.__iter__(self)))

    as_list = copy

    def __repr__(self):
        return f"ImmutableList({tuple(list.__iter__(self))!r})"

    __str__ = __repr__


class FrozenDict(dict):
    """Read-only dict; values come back wrapped; a missing str key is retried without case."""

    __setitem__ = __delitem__ = __ior__ = _immutable
    setdefault = update = pop = popitem = clear = _immutable

    def _key(self, key):
        if dict.__contains__(self, key) or not isinstance(key, str):
            return key
        low = key.lower()
        for k in dict.__iter__(self):
            if isinstance(k, str) and k.lower() == low:
                return k
        return key

    def __getitem__(self, key):
        return _wrap(dict.__getitem__(self, self._key(key)))

    def __contains__(self, key):
        return dict.__contains__(self, self._key(key))

    def get(self, key, default=None):
        k = self._key(key)
        return _wrap(dict.__getitem__(self, k)) if dict.__contains__(self, k) else default

    def items(self):
        return [(k, _wrap(v)) for k, v in dict.items(self)]

    def values(self):
        return [_wrap(v) for v in dict.values(self)]

    def copy(self):
        return copy.deepcopy(dict(dict.items(self)))

    to_dict = copy

    def __repr__(self):
        return f"ImmutableCaseInsensitiveDict({dict(dict.items(self))!r})"

    __str__ = __repr__


class PantherEvent(FrozenDict):
    """The event given to rule functions; records every look at p_enrichment."""

    def __init__(self, log, data_model):
        dict.__init__(self, copy.deepcopy(log))
        self._data_model = data_model  # {name: [path keys]} or None
        self.enrichment_lookups = {}

    def _note_enrichment(self, key, keys, found):
        if isinstance(key, str) and key.lower() == "p_enrichment":
            table = keys[0] if keys and isinstance(keys[0], str) else "*"
            self.enrichment_lookups[table] = self.enrichment_lookups.get(table, False) or found

    def __getitem__(self, key):
        self._note_enrichment(key, (), FrozenDict.__contains__(self, key))
        return FrozenDict.__getitem__(self, key)

    def __contains__(self, key):
        found = FrozenDict.__contains__(self, key)
        self._note_enrichment(key, (), found)
        return found

    def get(self, key, default=None):
        value = FrozenDict.get(self, key, default)
        self._note_enrichment(key, (), value is not None and value is not default)
        return value

    def deep_get(self, *keys, default=None):
        out = self
        for key in keys:
            out = (FrozenDict.get(out, key, default) if isinstance(out, FrozenDict)
                   else out.get(key, default) if isinstance(out, Mapping) else default)
        if keys:
            self._note_enrichment(keys[0], keys[1:], out is not None and out is not default)
        return default if out is None else out

    def deep_walk(self, *keys, default=None, return_val="all"):
        from panther_base_helpers import deep_walk  # the helper has the same semantics

        if keys:
            self._note_enrichment(keys[0], keys[1:], True)
        return deep_walk(self, *keys, default=default, return_val=return_val)

    def udm(self, *key, default=None):
        model = self._data_model
        if len(key) == 1 and model is not None and key[0] in model:
            cur = dict(dict.items(self))
            for part in model[key[0]]:
                if not isinstance(cur, dict) or part not in cur:
                    return default
                cur = cur[part]
            return _wrap(cur)
        if key:
            result = self.deep_get("p_udm", *key)
            if not result:
                result = self.deep_get(*key)
            if result:
                return result
        return default

    def to_dict(self):
        return copy.deepcopy(dict(dict.items(self)))

    copy = to_dict


def load_data_models(root):
    """{log type: {udm name: [path keys]}} from the data_models/*.yml that cover EKS audit logs."""
    models = {}
    ddir = os.path.join(root, "data_models")
    for name in sorted(os.listdir(ddir)):
        if not name.endswith((".yml", ".yaml")):
            continue
        with open(os.path.join(ddir, name), encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        if EKS_LOG_TYPE not in (doc.get("LogTypes") or []):
            continue  # only EKS events are evaluated
        mappings = {}
        for m in doc.get("Mappings", []):
            path = m.get("Path")
            if path is None:
                continue  # Method mappings: no EKS model uses them
            if not path.startswith("$.") or any(c in path for c in "[]*?@"):
                raise SystemExit(f"{name}: unsupported JSONPath {path!r}")
            mappings[m["Name"]] = path[2:].split(".")
        for lt in doc.get("LogTypes", []):
            models[lt] = mappings
    return models


# --------------------------------------------------------------------------- evaluation


def truncate(s):
    return s if len(s) <= MAX_FIELD else s[: MAX_FIELD - len(TRUNCATED)] + TRUNCATED


def err_text(fn, exc):
    return f"{fn}: {type(exc).__name__}: {exc}"


def evaluate(mod, meta, log, models):
    """Run the rule module on one log the way Panther does; return the result fields."""
    event = PantherEvent(log, models.get(log.get("p_log_type", "")))
    out, errors = {}, []
    has = lambda name: callable(getattr(mod, name, None))  # noqa: E731
    try:
        matched = mod.rule(event)
        if not isinstance(matched, bool):
            raise TypeError(f"rule returned {type(matched).__name__}, expected bool")
    except Exception as exc:  # noqa: BLE001 - record, never crash
        matched = False
        errors.append(err_text("rule", exc))
    out["python_result"] = matched is True
    if matched is True:
        default_title = meta["display_name"] or meta["rule_id"]
        title = default_title
        if has("title"):
            try:
                t = mod.title(event)
                if not isinstance(t, str):
                    raise TypeError(f"title returned {type(t).__name__}, expected str")
                title = truncate(t)
            except Exception as exc:  # noqa: BLE001
                errors.append(err_text("title", exc))
        out["title"] = title

        default_dedup = f"defaultDedupString:{meta['rule_id']}"
        if has("dedup"):
            try:
                d = mod.dedup(event)
                if not isinstance(d, str):
                    raise TypeError(f"dedup returned {type(d).__name__}, expected str")
                dedup = truncate(d) if d else default_dedup
            except Exception as exc:  # noqa: BLE001
                errors.append(err_text("dedup", exc))
                dedup = default_dedup
        else:
            dedup = truncate(title) if title else default_dedup
        out["dedup"] = dedup

        severity = meta["severity"]
        if has("severity"):
            try:
                s = mod.severity(event)
                if not isinstance(s, str):
                    raise TypeError(f"severity returned {type(s).__name__}, expected str")
                s = s.upper()
                if s != "DEFAULT":
                    if s not in SEVERITIES:
                        raise ValueError(f"severity returned {s!r}, expected one of {SEVERITIES}")
                    severity = s
            except Exception as exc:  # noqa: BLE001
                errors.append(err_text("severity", exc))
        out["severity"] = severity

        out["unique"] = None
        if has("unique"):
            try:
                u = mod.unique(event)
                if u is not None and not isinstance(u, str):
                    raise TypeError(f"unique returned {type(u).__name__}, expected str")
                out["unique"] = None if u is None else truncate(u)
            except Exception as exc:  # noqa: BLE001
                errors.append(err_text("unique", exc))

        out["alert_context"] = None
        if has("alert_context"):
            try:
                ctx = mod.alert_context(event)
                if not isinstance(ctx, Mapping):
                    raise TypeError(f"alert_context returned {type(ctx).__name__}, expected a mapping")
                out["alert_context"] = json.loads(json.dumps(ctx, default=str))
            except Exception as exc:  # noqa: BLE001
                errors.append(err_text("alert_context", exc))
                out["alert_context"] = {"_error": repr(exc)}
    if errors:
        out["error"] = "; ".join(errors)
    if event.enrichment_lookups:
        out["enrichment"] = True
        out["enrichment_lookups"] = dict(sorted(event.enrichment_lookups.items()))
    return out


# --------------------------------------------------------------------------- selection


def classify(log):
    """Return None to keep the test (an EKS audit event), or the reason to skip it."""
    if not isinstance(log, Mapping):
        return "Log is not an object"
    lt = log.get("p_log_type")
    if lt == EKS_LOG_TYPE:
        return None
    if lt is not None:
        return f"{lt} log"
    if "protoPayload" in log:
        return "GCP audit log (protoPayload, no p_log_type)"
    if "category" in log or "properties" in log:
        return "Azure log (category/properties, no p_log_type)"
    if any(k in log for k in K8S_AUDIT_KEYS):
        return None
    return "not a Kubernetes audit event (no p_log_type)"


def check_json_types(value, where):
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise SystemExit(f"{where}: non-string key {k!r} (YAML typing)")
            check_json_types(v, where)
    elif isinstance(value, list):
        for v in value:
            check_json_types(v, where)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise SystemExit(f"{where}: value {value!r} of type {type(value).__name__} is not JSON")


def load_module(path, rule_id):
    name = "panther_rule_" + "".join(c if c.isalnum() else "_" for c in rule_id)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(root, rel_yml, models):
    with open(os.path.join(root, rel_yml), encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    rule_dir = os.path.dirname(rel_yml)
    source_file = f"{rule_dir}/{doc['Filename']}"
    meta = {
        "rule_id": doc["RuleID"],
        "display_name": doc.get("DisplayName") or "",
        "enabled": bool(doc.get("Enabled", False)),
        "severity": str(doc["Severity"]).upper(),
        "threshold": int(doc.get("Threshold") or 1),
        "dedup_minutes": int(doc.get("DedupPeriodMinutes") or 60),
        "mitre": [str(x) for x in ((doc.get("Reports") or {}).get("MITRE ATT&CK") or [])],
        "reference": str(doc.get("Reference") or "").strip(),
        "summary_attributes": list(doc.get("SummaryAttributes") or []),
        "source_file": source_file,
        # Extra YAML flags that change what Panther does with a match.
        "create_alert": bool(doc.get("CreateAlert", True)),
        "status": doc.get("Status"),
    }
    mod = load_module(os.path.join(root, source_file), meta["rule_id"])
    meta["functions"] = sorted(f for f in ("title", "dedup", "severity", "unique", "alert_context")
                               if callable(getattr(mod, f, None)))
    tests, skipped = [], []
    for t in doc.get("Tests") or []:
        log = t.get("Log")
        why = classify(log)
        if why is not None:
            skipped.append({"name": t["Name"], "why": why})
            continue
        check_json_types(log, f"{meta['rule_id']} / {t['Name']}")
        entry = {"name": t["Name"], "expected": bool(t["ExpectedResult"]), "log": log}
        entry.update(evaluate(mod, meta, log, models))
        tests.append(entry)
    meta["tests"] = tests
    meta["skipped_tests"] = skipped
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("panther_analysis", help="panther-analysis work tree or git directory")
    ap.add_argument("out_dir", help="output directory, e.g. tests/fixtures/panther/catalog")
    ap.add_argument("--rev", default="HEAD", help="revision to read from a git directory")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="panther-analysis-") as tmp:
        root, commit = materialise(os.path.abspath(args.panther_analysis), args.rev, tmp)
        print(f"panther-analysis commit {commit}", flush=True)
        install_stubs()
        sys.path.insert(0, os.path.join(root, "global_helpers"))
        models = load_data_models(root)
        os.makedirs(args.out_dir, exist_ok=True)
        ymls = sorted(f"{d}/{n}" for d in RULE_DIRS for n in os.listdir(os.path.join(root, d))
                      if n.endswith((".yml", ".yaml")))
        bad = 0
        print(f"{'rule id':45} kept skip true disagree errors enrichment")
        for rel in ymls:
            fixture = build(root, rel, models)
            dis = 0
            for t in fixture["tests"]:
                if t["python_result"] != t["expected"]:
                    t["panther_disagrees"] = True
                    dis += 1
            bad += dis + sum(1 for t in fixture["tests"] if "error" in t)
            path = os.path.join(args.out_dir, f"{fixture['rule_id']}.json")
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                json.dump(fixture, fh, indent=1, sort_keys=True, ensure_ascii=False)
                fh.write("\n")
            kept = fixture["tests"]
            print(f"{fixture['rule_id']:45} {len(kept):4} {len(fixture['skipped_tests']):4} "
                  f"{sum(t['expected'] for t in kept):4} {dis:8} "
                  f"{sum('error' in t for t in kept):6} {sum('enrichment' in t for t in kept):10}")
        print(f"{len(ymls)} rules written to {args.out_dir}; "
              f"{bad} disagreement(s)/error(s)")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
