package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// CrashEnv names the fault-injection hook for crash-safety tests. It is
// compiled in always and inert unless the variable is set:
//
//	CASESYNC_CRASH_AT="after-write:17"
//
// makes the process SIGKILL itself at the 17th occurrence of the point,
// counted across every run the process makes. The points:
//
//	mid-page:N      when the Nth source record starts processing, before any
//	                of its requests (a page half done, nothing of it committed)
//	after-write:N   right after the Nth target write returns, before the
//	                after-steps and before its page commits (for a batch
//	                target, the Nth page's transaction: written, not
//	                yet committed to the state)
//	before-commit:N just before the Nth page commit
//	after-commit:N  just after the Nth page commit returns
//
// Several points may be given, separated by commas; the first reached kills.
// The kill is the real thing (os.Process.Kill, SIGKILL on Unix): no deferred
// function runs, no file is closed, exactly as when the machine loses power
// between two instructions.
const CrashEnv = "CASESYNC_CRASH_AT"

// The crash points.
const (
	CrashMidPage      = "mid-page"
	CrashAfterWrite   = "after-write"
	CrashBeforeCommit = "before-commit"
	CrashAfterCommit  = "after-commit"
)

// crashHook counts the crash points and kills the process at the chosen
// occurrence. A nil *crashHook does nothing.
type crashHook struct {
	at     map[string]int64
	counts map[string]*atomic.Int64
	kill   func()
}

// parseCrash reads a CASESYNC_CRASH_AT value; "" gives a nil hook.
func parseCrash(v string) (*crashHook, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	h := &crashHook{at: map[string]int64{}, counts: map[string]*atomic.Int64{}, kill: killSelf}
	for _, part := range strings.Split(v, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not POINT:N with N >= 1", CrashEnv, part)
		}
		switch name {
		case CrashMidPage, CrashAfterWrite, CrashBeforeCommit, CrashAfterCommit:
		default:
			return nil, fmt.Errorf("%s: unknown point %q (want %s, %s, %s or %s)", CrashEnv, name,
				CrashMidPage, CrashAfterWrite, CrashBeforeCommit, CrashAfterCommit)
		}
		h.at[name] = n
	}
	for _, name := range []string{CrashMidPage, CrashAfterWrite, CrashBeforeCommit, CrashAfterCommit} {
		h.counts[name] = new(atomic.Int64)
	}
	return h, nil
}

// hit counts one occurrence of point and kills the process when it is the
// chosen one.
func (h *crashHook) hit(point string) {
	if h == nil {
		return
	}
	n := h.counts[point].Add(1)
	if at, ok := h.at[point]; ok && n == at {
		h.kill()
	}
}

func killSelf() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	// The signal is asynchronous: never return into the code the crash
	// is meant to interrupt.
	for {
		time.Sleep(time.Hour)
	}
}
