#!/usr/bin/env node
// Offline schema validation of Kubernetes objects (no API server, no kubeconform).
//
//   node tests/deploy/validate_k8s.mjs [-v] FILE...
//
// FILE: YAML with one or more documents (empty ones, as helm template writes them, are
// skipped), or JSON (*.json) holding one object or a List ({"kind": "List", "items": [...]}).
// Every object's apiVersion + kind is looked up in the model packages below and validated
// against the upstream OpenAPI schema of that kind (kubernetes-models: the Kubernetes API;
// @kubernetes-models/prometheus-operator: ServiceMonitor, PrometheusRule, ...;
// @kubernetes-models/cert-manager: Certificate, Issuer, ...).
//
// On top of the schema (whose objects accept any extra property), fields the schema does
// not know are errors too, like `kubectl apply` (--validate=strict) reports them: a
// misspelt `readinessProbe` or a field at the wrong level is caught. Objects the schema
// leaves free-form (labels, annotations, ConfigMap data, x-kubernetes-preserve-unknown-fields)
// are not checked for unknown fields.
//
// An apiVersion/kind that no package models is an error, never skipped. So are a missing
// apiVersion/kind/metadata.name (or generateName) and two objects of one kind with the same
// namespace/name in a file.
//
// Exit status 0 when every object is valid; otherwise 1, with one line per problem:
//   FILE: Kind/name: message
// (2 for usage errors). -v also lists every valid object.
import { readFileSync } from "node:fs";
import YAML from "yaml";

const PACKAGES = [
  "kubernetes-models",
  "@kubernetes-models/prometheus-operator",
  "@kubernetes-models/cert-manager",
];

const classCache = new Map();

// apiVersion + kind -> the model class, or null. Imports only the one module that
// would define it (<package>/<group>/<version>/<Kind>), so a run stays fast.
async function modelClass(apiVersion, kind) {
  const key = `${apiVersion}|${kind}`;
  if (classCache.has(key)) return classCache.get(key);
  let cls = null;
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const sane =
    /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^$/.test(group) &&
    /^v[0-9]+((alpha|beta)[0-9]+)?$/.test(version) &&
    /^[A-Z][A-Za-z0-9]*$/.test(kind);
  if (sane) {
    for (const pkg of PACKAGES) {
      if (!group && pkg !== "kubernetes-models") continue; // the core group lives there only
      const spec = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
      let mod;
      try {
        mod = await import(spec);
      } catch (e) {
        if (["ERR_MODULE_NOT_FOUND", "ERR_PACKAGE_PATH_NOT_EXPORTED"].includes(e.code)) continue;
        throw e;
      }
      const c = mod[kind];
      if (typeof c === "function" && c.apiVersion === apiVersion && c.kind === kind) {
        cls = c;
        break;
      }
    }
  }
  classCache.set(key, cls);
  return cls;
}

// A JSON pointer from ajv ("/spec/containers/0/name") as "spec.containers[0].name".
function fieldPath(pointer) {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^[0-9]+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out || "(object)";
}

function schemaErrors(cls, obj) {
  try {
    new cls(obj).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) return [String(e.message || e)];
    const seen = new Set();
    const lines = [];
    for (const err of e.errors) {
      let msg = err.message || err.keyword;
      if (err.keyword === "additionalProperties" && err.params?.additionalProperty) {
        msg = `unknown field "${err.params.additionalProperty}"`;
      } else if (err.keyword === "enum" && err.params?.allowedValues) {
        msg += ` (${err.params.allowedValues.join(", ")})`;
      }
      const line = `${fieldPath(err.instancePath)}: ${msg}`;
      if (!seen.has(line)) lines.push(line), seen.add(line);
    }
    return lines;
  }
}

// Unknown fields: the generated validators read every property their schema declares
// (`data.readinessProbe !== undefined && ...`) and iterate the keys of maps. Running one
// over a Proxy records which keys of each object it asked about; a key it never asked
// about is unknown to the schema. An object the validator never looked into is free-form.
function unknownFields(cls, obj) {
  const records = [];
  const proxies = new WeakMap();
  const wrap = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    if (proxies.has(value)) return proxies.get(value);
    const rec = { obj: value, path, asked: new Set(), iterated: false, array: Array.isArray(value) };
    records.push(rec);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== "string") return v;
        rec.asked.add(key);
        if (!Object.prototype.hasOwnProperty.call(target, key)) return v;
        const child = rec.array ? `${path}[${key}]` : path ? `${path}.${key}` : key;
        return wrap(v, child);
      },
      has(target, key) {
        if (typeof key === "string") rec.asked.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        rec.iterated = true; // a map (additionalProperties): its keys are data, not fields
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  try {
    cls.prototype.validate.call(wrap(structuredClone(obj), ""));
  } catch {
    // schema errors are reported by schemaErrors()
  }
  const out = [];
  for (const rec of records) {
    if (rec.array || rec.iterated || rec.asked.size === 0) continue;
    for (const key of Object.keys(rec.obj)) {
      if (!rec.asked.has(key)) out.push(`${rec.path ? `${rec.path}.` : ""}${key}: unknown field`);
    }
  }
  return out;
}

function readObjects(file) {
  const text = readFileSync(file, "utf8");
  if (file.endsWith(".json")) {
    const obj = JSON.parse(text);
    return [obj];
  }
  // YAML 1.1, as Kubernetes' own parser reads it (`on`/`yes` are booleans there).
  const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true });
  const objs = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join("; "));
    const v = doc.toJS();
    if (v !== null && v !== undefined) objs.push(v);
  }
  return objs;
}

function objName(o) {
  const md = (o && typeof o === "object" && o.metadata) || {};
  return `${o?.kind ?? "?"}/${md.name ?? (md.generateName ? `${md.generateName}*` : "?")}`;
}

async function main(argv) {
  const verbose = argv[0] === "-v";
  const files = verbose ? argv.slice(1) : argv;
  if (files.length === 0 || files.some((f) => f.startsWith("-"))) {
    console.error("usage: node validate_k8s.mjs [-v] FILE...   (YAML documents or JSON)");
    return 2;
  }
  let problems = 0;
  let valid = 0;
  const report = (file, what, msg) => {
    problems++;
    console.log(`${file}: ${what}: ${msg}`);
  };
  for (const file of files) {
    let objs;
    try {
      objs = readObjects(file);
    } catch (e) {
      report(file, "(file)", `cannot parse: ${e.message}`);
      continue;
    }
    if (objs.length === 0) report(file, "(file)", "no Kubernetes object in it");
    const items = [];
    for (const o of objs) {
      if (o && o.kind === "List" && o.apiVersion === "v1" && Array.isArray(o.items)) items.push(...o.items);
      else items.push(o);
    }
    const names = new Set();
    for (const o of items) {
      const what = objName(o);
      if (!o || typeof o !== "object" || Array.isArray(o)) {
        report(file, what, "not an object");
        continue;
      }
      if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
        report(file, what, "apiVersion and kind are required");
        continue;
      }
      if (!o.metadata?.name && !o.metadata?.generateName) {
        report(file, what, "metadata.name (or generateName) is required");
      }
      const id = `${o.apiVersion.split("/")[0]}|${o.kind}|${o.metadata?.namespace ?? ""}|${o.metadata?.name ?? ""}`;
      if (o.metadata?.name && names.has(id)) report(file, what, "defined twice (same kind, namespace and name)");
      names.add(id);
      const cls = await modelClass(o.apiVersion, o.kind);
      if (!cls) {
        report(file, what, `unknown apiVersion/kind ${o.apiVersion} ${o.kind} (no schema in ${PACKAGES.join(", ")})`);
        continue;
      }
      const errs = schemaErrors(cls, o);
      const extra = unknownFields(cls, o);
      for (const e of [...errs, ...extra]) report(file, what, e);
      if (!errs.length && !extra.length) {
        valid++;
        if (verbose) console.log(`ok      ${file}: ${what} (${o.apiVersion})`);
      }
    }
  }
  if (problems) {
    console.log(`validate_k8s: ${problems} problem(s); ${valid} object(s) valid`);
    return 1;
  }
  console.log(`validate_k8s: ${valid} object(s) valid in ${files.length} file(s)`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
