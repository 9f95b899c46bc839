package daemon

import (
	"context"
	"errors"
	"time"

	"casesync/engine/spec"
)

// reloadStatus is what /status says about reloads.
type reloadStatus struct {
	loadedAt  time.Time
	count     int64 // successful reloads (a swap)
	failures  int64
	lastErr   string        // the last failed reload's error; "" once one succeeds
	problems  spec.Problems // its positioned problems, when the spec was at fault
	lastErrAt time.Time
	lastPaths []string // files whose change caused the last attempt
}

// RequestReload asks for a reload; requests made while one is under way
// collapse into one more. paths, when known, say which files changed.
func (d *Daemon) RequestReload(paths ...string) {
	d.mu.Lock()
	d.reloadPaths = append(d.reloadPaths, paths...)
	d.mu.Unlock()
	select {
	case d.reloadReq <- nil:
	default:
	}
}

func (d *Daemon) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.reloadReq:
			d.mu.Lock()
			paths := d.reloadPaths
			d.reloadPaths = nil
			d.mu.Unlock()
			_ = d.Reload(paths...) // logged, counted and shown by Reload
		}
	}
}

// Reload loads the deployment again and, when it builds and differs,
// swaps it in for the next runs. Runs in progress keep the bundle they
// started with. A failure keeps the current plan, is logged with every
// problem's position, and shows in /status and the metrics; nothing
// retries it until a file changes again (or SIGHUP).
func (d *Daemon) Reload(paths ...string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cur := d.cur.Load()
	plan, err := d.cfg.Load()
	if err == nil && plan.Hash == cur.plan.Hash {
		// Nothing that matters changed (or a broken edit was undone): the
		// running plan is what the files say.
		d.mu.Lock()
		d.reloadInfo.lastErr, d.reloadInfo.problems = "", nil
		d.mu.Unlock()
		d.log.Debug("spec unchanged; nothing to reload", "hash", plan.Hash, "paths", paths)
		d.event(Event{Kind: EventReloadUnchanged, Hash: plan.Hash})
		return nil
	}
	var b *bundle
	if err == nil {
		b, err = d.build(plan)
	}
	if err != nil {
		d.reloadFailed(err, paths)
		return err
	}
	old := d.cur.Swap(b)
	d.mu.Lock()
	d.reloadInfo.count++
	d.reloadInfo.loadedAt = b.loadedAt
	d.reloadInfo.lastErr, d.reloadInfo.problems = "", nil
	d.reloadInfo.lastPaths = paths
	d.mu.Unlock()
	d.m.reloads.Inc()
	d.retire(old)
	d.log.Info("spec reloaded", "deployment", plan.Name, "hash", plan.Hash, "previous", old.plan.Hash, "paths", paths)
	select {
	case d.planKick <- struct{}{}:
	default:
	}
	if err := d.countPending(context.Background(), plan); err != nil {
		d.log.Warn("count pending inbox deliveries", "error", err)
	}
	d.startInboxWorkers(plan, true)
	d.event(Event{Kind: EventReloaded, Hash: plan.Hash})
	return nil
}

func (d *Daemon) reloadFailed(err error, paths []string) {
	var ps spec.Problems
	errors.As(err, &ps)
	d.mu.Lock()
	d.reloadInfo.failures++
	d.reloadInfo.lastErr = err.Error()
	d.reloadInfo.problems = ps
	d.reloadInfo.lastErrAt = d.cfg.Clock.Now()
	d.reloadInfo.lastPaths = paths
	d.mu.Unlock()
	d.m.reloadFailures.Inc()
	if len(ps) > 0 {
		d.log.Error("spec reload rejected; the running plan stays", "problems", len(ps), "hash", d.cur.Load().plan.Hash)
		for _, p := range ps {
			d.log.Error(p.String())
		}
	} else {
		d.log.Error("spec reload rejected; the running plan stays", "error", err, "hash", d.cur.Load().plan.Hash)
	}
	d.event(Event{Kind: EventReloadFailed, Err: err})
}
