// Package daemon is `engine run`: the always-on process that runs a
// deployment's pipelines on their cron schedules and after each other,
// accepts webhook deliveries into a durable inbox, reloads the spec when it
// changes, and serves health, status and metrics over HTTP.
//
// It owns scheduling and lifecycles, not sync logic: every run goes through
// engine.Runner.Sync, every plan comes from the Load function the command
// passes in (spec.Load, the loader `engine check` uses), and every byte of
// state goes through internal/state. The file system watcher lives in
// internal/watch; this package only hears "reload".
package daemon
