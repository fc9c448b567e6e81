/*
 * cortexpilot/plugin.h — FROZEN COPY of ABI 1.3 as released, for the compatibility test: a plugin built
 * against this header must keep loading in every later 1.x host. Never edit.
 * (Original title: the cp-host plugin ABI, version 1.)
 *
 * This header is the whole contract between cp-host and a plugin. It is pure C11 so that a plugin can be
 * written in any language that can export a C symbol; no C++ type ever crosses the boundary.
 *
 * ---------------------------------------------------------------------------------------------------------
 * Versioning
 *   The ABI is versioned MAJOR.MINOR (CP_PLUGIN_ABI_MAJOR / CP_PLUGIN_ABI_MINOR below).
 *   - The host accepts a plugin whose major equals its own and whose minor is <= its own.
 *   - Within a major, structs and function tables only ever grow at their end. Every struct that crosses
 *     the boundary starts with `struct_size`, set by whoever fills it to sizeof() of the struct it was
 *     compiled against. A reader never touches a field that lies beyond the struct_size it was given.
 *   - A breaking change is a new major with a new entry symbol (cp_plugin_entry_v2, ...), so an old host
 *     never even finds a plugin it cannot understand.
 *   History:
 *     1.0  first release.
 *     1.1  a spawn request's stdout_sink may return non-zero to have the host stop the process (runners
 *          enforce budgets this way). A 1.0 plugin never returns non-zero there, so it runs unchanged.
 *     1.2  descriptors declare what the host used to know by plugin id, so no first-party plugin is named
 *          in the host:
 *          - gate flags: CP_FLAG_GATE_POLICY (a required gate's "fail" seals the run "denied") and
 *            CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER (the gate is skipped when the runner did not complete);
 *          - cp_context.state_dir (appended): a runner's private state folder for the run, made by the
 *            host; the runner input's resume.state_dir names the resumed run's one;
 *          - a runner result's fields beyond those the host reads pass verbatim into task_result.json
 *            (schemas/runner_result.schema.json says which names are the host's);
 *          - a gate verdict may carry next_action, the advice the incident pack shows.
 *          A 1.0 or 1.1 gate defined no gate flags, so the host ignores its flags and keeps what those
 *          hosts did by id: "diff_scope" and "forbidden_actions" are policy gates, "acceptance_tests"
 *          needs a completed runner, every other gate neither. A 1.0 or 1.1 runner also still gets
 *          resume.codex_home. Nothing else changes for them.
 *     1.3  for runners that drive a long-lived program (a browser) rather than run commands to completion:
 *          - cp_spawn_request gains flags (CP_SPAWN_LOOPBACK_LISTENER: the process serves one loopback
 *            debugging endpoint the plugin connects to) and keep_running (polled; returning 0 stops the
 *            process, so the plugin can end it without waiting for output);
 *          - cp_context.shared_state_dir (appended): a folder that outlives runs, which a runner asks for
 *            by declaring the capability "shared_state:<name>" (a browser's named profiles).
 *          A request or context built by an older minor is shorter; the host reads no field beyond it.
 *
 * Ownership
 *   - Every pointer passed *into* a plugin call is borrowed for the duration of that call only. Copy what
 *     you need to keep.
 *   - Every output a plugin produces (verdicts, capabilities, plans, run results) is written into a
 *     host-provided cp_sink during the call. The host copies the bytes; the plugin keeps ownership of its
 *     own buffers. Nothing the plugin allocates is ever freed by the host, and vice versa.
 *   - Errors are host-allocated: a plugin creates one with cp_host_services.make_error() and stores it in
 *     the `err` out-parameter; the host frees it. A plugin must not free or keep a cp_error.
 *   - The manifest and its descriptors are owned by the plugin and must stay valid and unchanged until the
 *     library is unloaded (static storage is the usual choice).
 *
 * Errors
 *   Nothing throws across the boundary. Every fallible call returns a cp_status; on a status other than
 *   CP_OK / CP_PENDING the plugin may set *err. An error from a gate is never a pass: the host turns it
 *   into verdict "error" (fail-closed).
 *
 * Threads
 *   - cp_plugin_entry is called once per load, on the loading thread, before any other call.
 *   - create() may be called from any host thread, and concurrently for different instances of the same
 *     descriptor: a plugin with global mutable state must lock it.
 *   - Calls into one instance are serialized by the host (never two at once), with one exception written on
 *     cp_runner_vtable.cancel.
 *   - Host services may be called from the thread of the plugin call that received the context, and from
 *     threads the plugin created, but only while that call is in progress (the runner's run is "in
 *     progress" from start until release).
 *
 * Legal call order (every kind)
 *   cp_plugin_entry -> { create -> (kind calls)* -> destroy }* -> library unloaded.
 *   Kind calls:
 *     runner:          start -> (wait)* [-> cancel] -> wait returns CP_OK -> release     (per run)
 *     gate:            evaluate*
 *     probe:           probe*
 *     retention lane:  plan* and, only when the descriptor sets CP_FLAG_LANE_APPLIES_OWN_PLAN, apply*
 *
 * JSON
 *   Every JSON document crosses as a NUL-terminated UTF-8 string. The host validates each plugin's config
 *   against the descriptor's config_schema before create(), and validates every plugin output against its
 *   schema in the host's schemas/ folder; invalid output counts as an error (fail-closed).
 * ---------------------------------------------------------------------------------------------------------
 */
#ifndef CORTEXPILOT_PLUGIN_H
#define CORTEXPILOT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A plugin reports the values it was compiled with in its manifest. */
#define CP_PLUGIN_ABI_MAJOR 1
#define CP_PLUGIN_ABI_MINOR 3

/* Name of the one symbol a plugin exports for ABI major 1. */
#define CP_PLUGIN_ENTRY_SYMBOL "cp_plugin_entry"

#if defined(__GNUC__)
#define CP_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define CP_PLUGIN_EXPORT
#endif

/* Status of a call. Negative values are failures. */
typedef enum cp_status {
  CP_OK = 0,             /* done */
  CP_PENDING = 1,        /* runner wait only: not finished within the timeout; call wait again */
  CP_E_INVALID = -1,     /* the input or config is wrong; the message says what and where */
  CP_E_FAILED = -2,      /* the plugin failed internally */
  CP_E_UNSUPPORTED = -3, /* the plugin does not implement this call or option */
  CP_E_CANCELLED = -4,   /* the call stopped because the host asked it to */
  CP_E_TIMEOUT = -5,     /* a deadline passed */
  CP_E_LIMIT = -6        /* an output or resource limit was hit (e.g. the sink refused more bytes) */
} cp_status;

/* Plugin kinds. A manifest may hold descriptors of several kinds. */
typedef enum cp_plugin_kind {
  CP_KIND_RUNNER = 1,
  CP_KIND_GATE = 2,
  CP_KIND_PROBE = 3,
  CP_KIND_RETENTION_LANE = 4
} cp_plugin_kind;

typedef enum cp_log_level {
  CP_LOG_DEBUG = 0,
  CP_LOG_INFO = 1,
  CP_LOG_WARN = 2,
  CP_LOG_ERROR = 3
} cp_log_level;

/* An error object. Allocated by the host (cp_host_services.make_error), freed by the host.
 * The plugin only creates it and hands it over through an `err` out-parameter. */
typedef struct cp_error {
  uint32_t struct_size; /* sizeof(cp_error) as the host built it */
  int32_t code;         /* a cp_status value, or a plugin-defined code < -1000 */
  const char* message;  /* UTF-8, owned by the error; valid until the host frees the error */
} cp_error;

/* A byte sink the host provides for one output. write() may be called several times; the bytes are
 * appended. Returns 0 when accepted, non-zero when the host refuses more (the output limit was reached):
 * the plugin should then stop and return CP_E_LIMIT. The sink is valid only during the call it was
 * passed to. */
typedef struct cp_sink {
  uint32_t struct_size;
  void* opaque; /* host data; never touched by the plugin */
  int (*write)(struct cp_sink* self, const char* data, size_t len);
} cp_sink;

struct cp_context;

/* A process the plugin asks the host to run. The host owns the process: it puts it in its own process
 * group, enforces the deadline (SIGTERM to the group, grace period, SIGKILL), kills anything left in the
 * group when the leader exits, and reaps everything. So no plugin can leak a child. */
typedef struct cp_spawn_request {
  uint32_t struct_size;
  const char* const* argv; /* NULL-terminated; argv[0] is looked up in PATH when it has no '/' */
  const char* cwd;         /* working directory; NULL = the run's workspace, or the host's cwd */
  const char* const* env;  /* NULL-terminated "K=V" list replacing the environment; NULL = inherit */
  uint64_t timeout_ms;     /* 0 = no deadline other than the run's own cancellation */
  const char* stdout_path; /* when non-NULL, stdout is also written to this file (created/truncated) */
  const char* stderr_path; /* same for stderr */
  cp_sink* stdout_sink;    /* when non-NULL, receives stdout bytes as they arrive, on the thread that
                            * called spawn. A non-zero return asks the host to stop the process: its
                            * group gets SIGTERM, then SIGKILL after the grace period, and the result
                            * says cancelled = 1 (how a runner enforces a budget from the stream). */
  cp_sink* stderr_sink;    /* same for stderr (a non-zero return only stops the delivery) */
  /* ABI 1.3 (read only when struct_size covers them; a 1.0-1.2 request is shorter). */
  uint32_t flags; /* CP_SPAWN_* bits; 0 when none. Unknown bits make the host refuse the request. */
  /* When non-NULL, called by the host on the thread that called spawn, about every 20 ms while the
   * process runs, with keep_running_arg. Returning 0 stops the process exactly as a refusing stdout_sink
   * does (SIGTERM to its group, SIGKILL after the grace period, result.cancelled = 1). It lets a plugin
   * end a process that writes nothing, from another of its threads, through a flag the callback reads. */
  int (*keep_running)(void* keep_running_arg);
  void* keep_running_arg;
} cp_spawn_request;

/* ABI 1.3. The process listens on one loopback TCP port that the plugin itself connects to (a browser's
 * DevTools endpoint). Inside a run whose network is denied the host then lets this process bind a port
 * of the kernel's ephemeral range (never a chosen one) and keeps it in the host's network namespace, so
 * the plugin can reach it; every connect rule of the run is unchanged. Refused (CP_E_UNSUPPORTED) where
 * the kernel cannot filter TCP ports (Landlock ABI < 4) while the run's network is denied. */
#define CP_SPAWN_LOOPBACK_LISTENER 0x1u
/* ABI 1.3. The process may write the run's shared_state_dir (cp_context). No other process of the run may:
 * the folder outlives runs, so only the program the runner drives with it (a browser on its profile) gets
 * it, never the run's commands or tests. */
#define CP_SPAWN_SHARED_STATE 0x2u
#define CP_SPAWN_ALL (CP_SPAWN_LOOPBACK_LISTENER | CP_SPAWN_SHARED_STATE)

/* How a spawned process ended. Filled by the host. */
typedef struct cp_spawn_result {
  uint32_t struct_size;
  int32_t started;     /* 1 when the process was started; 0 when exec failed (exit_code is then 127) */
  int32_t exit_code;   /* exit status when it exited normally, else -1 */
  int32_t term_signal; /* the signal that ended it, else 0 */
  int32_t timed_out;   /* 1 when the host killed it because timeout_ms passed */
  int32_t cancelled;   /* 1 when the host killed it because the run was cancelled */
  uint64_t duration_ms;
} cp_spawn_result;

/* Services the host offers to plugin calls. Every function takes the context it came with.
 * Thread rule: see the header comment ("Host services ..."). */
typedef struct cp_host_services {
  uint32_t struct_size;
  /* Write a line to the host's log lanes, attributed to this plugin and call. */
  void (*log)(const struct cp_context* ctx, cp_log_level level, const char* message);
  /* Create an error the host will own and free. Never returns NULL. */
  cp_error* (*make_error)(const struct cp_context* ctx, int32_t code, const char* message);
  /* Append an event to the current run's event log. `type` is UPPER_SNAKE_CASE; payload_json an object.
   * Returns CP_E_UNSUPPORTED outside a run, CP_E_INVALID when type or payload is malformed. */
  cp_status (*emit_event)(const struct cp_context* ctx, const char* type, const char* payload_json);
  /* Run a process to completion under the host's control (blocking). */
  cp_status (*spawn)(const struct cp_context* ctx, const cp_spawn_request* request, cp_spawn_result* result);
  /* 1 once the host wants the current call to stop (run cancelled or deadline passed), else 0. */
  int (*is_cancelled)(const struct cp_context* ctx);
} cp_host_services;

/* The context of one call: who the host is and which services apply. Borrowed for the call.
 * Fields after bundle_dir were appended by later minors: read one only when struct_size covers it
 * (CP_CONTEXT_HAS(ctx, field)). */
typedef struct cp_context {
  uint32_t struct_size;
  const cp_host_services* services;
  void* opaque;           /* host data; never touched by the plugin */
  const char* workspace;  /* the run's worktree, or NULL outside a run */
  const char* bundle_dir; /* the run's bundle directory, or NULL outside a run */
  /* ABI 1.2. A runner's private state folder for this run (an agent CLI's home, caches, session files),
   * or NULL for every other kind and outside a run. The host creates it empty before start(), keeps it
   * out of the worktree and the bundle, lets the run's sandbox write there, counts it in the run's disk
   * budget, and keeps it after the run (retention removes it later) so that a run resuming this one gets
   * its path as resume.state_dir in the runner input. Nothing else of the runtime root is the plugin's
   * to write. */
  const char* state_dir;
  /* ABI 1.3. For a runner that declares the capability "shared_state:<name>" (<name>: [a-z][a-z0-9-]*, at
   * most 64 bytes, not one of the host's own folders): the folder <runtime root>/<name>, shared by every
   * run of every runner that declares the same name and kept across runs. The host creates it and lets
   * the run's sandbox write beneath it; the runner locks what its runs must not share at once. NULL for
   * every other plugin and outside a run. */
  const char* shared_state_dir;
} cp_context;

/* 1 when `ctx` (a const cp_context*) was built with `field`, i.e. its struct_size reaches past it. */
#define CP_CONTEXT_HAS(ctx, field) \
  ((ctx) != NULL && (size_t)(ctx)->struct_size >= offsetof(cp_context, field) + sizeof((ctx)->field))

/* What the host tells a plugin at load time. */
typedef struct cp_host_info {
  uint32_t struct_size;
  uint32_t abi_major;        /* the host's CP_PLUGIN_ABI_MAJOR */
  uint32_t abi_minor;        /* the host's CP_PLUGIN_ABI_MINOR */
  const char* host_version;  /* e.g. "0.1.0" */
  const cp_context* context; /* for make_error/log during the entry call only */
} cp_host_info;

/* ------------------------------------------------------------------------------------------------------
 * Function tables, one per kind. Each begins with struct_size and the common create/destroy pair.
 * `instance` is the opaque pointer create() returned.
 * ------------------------------------------------------------------------------------------------------ */

/* create: build an instance from a config the host has already validated against config_schema.
 * On success store the instance in *out_instance and return CP_OK. On failure return an error status and
 * optionally set *err; *out_instance is ignored. */
typedef cp_status (*cp_create_fn)(const cp_context* ctx, const char* config_json, void** out_instance,
                                  cp_error** err);
/* destroy: free the instance. Called exactly once per successful create, after every other call on it. */
typedef void (*cp_destroy_fn)(void* instance);

typedef struct cp_gate_vtable {
  uint32_t struct_size;
  cp_create_fn create;
  cp_destroy_fn destroy;
  /* Judge a run. input_json is the gate input document (schemas/gate_input.schema.json): the compiled
   * contract, the workspace and bundle paths, the changed files and the executed commands. Write one JSON
   * verdict (schemas/gate_verdict.schema.json) to `out`. Any status other than CP_OK, or output that does
   * not validate, makes the gate's verdict "error". Since ABI 1.2 a verdict may carry "next_action": what
   * a person should do about it, shown as the incident pack's suggested_next_action when this gate's
   * failure decided the run's verdict (otherwise the host writes a generic line). */
  cp_status (*evaluate)(void* instance, const cp_context* ctx, const char* input_json, cp_sink* out,
                        cp_error** err);
} cp_gate_vtable;

typedef struct cp_probe_vtable {
  uint32_t struct_size;
  cp_create_fn create;
  cp_destroy_fn destroy;
  /* Report capabilities as JSON (schemas/probe_result.schema.json), including ttl_seconds: how long the
   * host may cache the answer. */
  cp_status (*probe)(void* instance, const cp_context* ctx, cp_sink* out, cp_error** err);
} cp_probe_vtable;

typedef struct cp_runner_vtable {
  uint32_t struct_size;
  cp_create_fn create;
  cp_destroy_fn destroy;
  /* Begin a run described by run_json (schemas/runner_input.schema.json). Store an opaque run handle in
   * *out_run. The runner spawns processes only through ctx->services->spawn; `ctx` stays valid until
   * release() of this run. Keep private state in ctx->state_dir (ABI 1.2), nowhere else. */
  cp_status (*start)(void* instance, const cp_context* ctx, const char* run_json, void** out_run,
                     cp_error** err);
  /* Wait up to timeout_ms for the run to finish. CP_PENDING: still running. CP_OK: finished, and the run
   * result (schemas/runner_result.schema.json) has been written to `out`. Since ABI 1.2 every top-level
   * field of the result other than the ones task_result.json's host part uses (schema_version, run_id,
   * task_id, runner, status, reason, commands, usage, changes: the host writes those) is the runner's own
   * and is copied verbatim into reports/task_result.json, e.g. codex's "stream" and "last_message". */
  cp_status (*wait)(void* instance, void* run, uint64_t timeout_ms, cp_sink* out, cp_error** err);
  /* Ask the run to stop: force == 0 graceful, 1 immediate. Idempotent. This is the one call the host may
   * make concurrently with wait() on the same run, from another thread; the runner must make it safe. */
  cp_status (*cancel)(void* instance, void* run, int32_t force);
  /* Free the run handle. Only after wait() returned CP_OK (or start failed: then never). */
  void (*release)(void* instance, void* run);
} cp_runner_vtable;

/* Descriptor flags. Bits are per kind: the same value means different things for different kinds. */

/* Set on a retention lane descriptor when the lane applies its plans itself (apply != NULL). */
#define CP_FLAG_LANE_APPLIES_OWN_PLAN 0x1u

/* ABI 1.2. Set on a gate descriptor whose failure means the run broke a rule rather than fell short: when
 * the pack requires the gate and it returns "fail", the run is sealed "denied" (exit 5), outranking
 * timeout, cancellation and errors, instead of "failure". An optional gate's fail still only warns. */
#define CP_FLAG_GATE_POLICY 0x1u
/* ABI 1.2. Set on a gate descriptor that judges finished work (tests, say) and has nothing to judge when
 * the runner did not complete: the host then does not call it and records it "skipped" (never a pass). */
#define CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER 0x2u
/* A 1.2 gate setting a bit outside these is refused at load (a 1.0/1.1 gate's flags are ignored). */
#define CP_FLAG_GATE_ALL (CP_FLAG_GATE_POLICY | CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER)

typedef struct cp_retention_lane_vtable {
  uint32_t struct_size;
  cp_create_fn create;
  cp_destroy_fn destroy;
  /* List what should be removed and why (schemas/retention_plan.schema.json). Never deletes anything. */
  cp_status (*plan)(void* instance, const cp_context* ctx, const char* lane_input_json, cp_sink* out,
                    cp_error** err);
  /* Optional (NULL unless CP_FLAG_LANE_APPLIES_OWN_PLAN): delete exactly what plan_json lists, re-checking
   * each entry, and write an apply report. */
  cp_status (*apply)(void* instance, const cp_context* ctx, const char* plan_json, cp_sink* out,
                     cp_error** err);
} cp_retention_lane_vtable;

/* One capability a plugin offers. */
typedef struct cp_plugin_descriptor {
  uint32_t struct_size;
  cp_plugin_kind kind;
  const char* id;                 /* unique across all loaded plugins: [a-z][a-z0-9_.-]*, <= 64 bytes */
  const char* version;            /* semantic version of this descriptor's behaviour, e.g. "1.2.0" */
  const char* description;        /* one line, for `cp-host plugins list` */
  const char* config_schema_json; /* JSON Schema (draft-07) of the config create() accepts */
  const char* capabilities_json;  /* JSON array of capability names, e.g. ["diff", "spawn"] */
  uint32_t flags;                 /* CP_FLAG_* bits for this kind (lane: CP_FLAG_LANE_*; gate, since ABI
                                   * 1.2: CP_FLAG_GATE_*); 0 when none */
  const void* vtable;             /* points to the cp_*_vtable of `kind` */
} cp_plugin_descriptor;

/* What a library offers. Owned by the plugin; valid until unload. */
typedef struct cp_plugin_manifest {
  uint32_t struct_size;
  uint32_t abi_major;  /* CP_PLUGIN_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;  /* CP_PLUGIN_ABI_MINOR the plugin was built with */
  const char* name;    /* library name, e.g. "cp-gates-core" */
  const char* version; /* library version */
  size_t descriptor_count;
  const cp_plugin_descriptor* descriptors; /* array of descriptor_count entries */
} cp_plugin_manifest;

/* The one exported entry point. Called once per load. Store the manifest in *out and return CP_OK; or
 * return an error status (and optionally *err) to refuse loading, e.g. when host->abi_minor is too old
 * for a feature the plugin cannot do without. */
typedef cp_status (*cp_plugin_entry_fn)(const cp_host_info* host, const cp_plugin_manifest** out,
                                        cp_error** err);

CP_PLUGIN_EXPORT cp_status cp_plugin_entry(const cp_host_info* host, const cp_plugin_manifest** out,
                                           cp_error** err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CORTEXPILOT_PLUGIN_H */
