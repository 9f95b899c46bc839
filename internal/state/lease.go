package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrHeld means another process holds the state file's writer lease.
var ErrHeld = errors.New("state file is held by another process")

// HeldError names who holds a state file's lease. It matches ErrHeld with
// errors.Is.
type HeldError struct {
	Path   string
	Holder string // "engine run, pid 123, since 2026-03-01T09:00:00Z", or "" when unreadable
}

func (e *HeldError) Error() string {
	h := e.Holder
	if h == "" {
		h = "another process"
	}
	return fmt.Sprintf("state %s is held by %s; trigger the pipeline through the daemon or stop it (or pass --wait to queue behind it)", e.Path, h)
}

// Is lets errors.Is(err, ErrHeld) match.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// The writer lease is an OS lock (flock) on a side file, "<state>.lock":
// the kernel drops it when its holder dies, however it dies, so a lease
// left by a SIGKILLed process is free at once and never needs a timeout to
// expire, and two processes can never both believe they hold it. The file
// also says who holds it, for the refusal. It is never removed: removing a
// lock file races with a process that has just opened it.
//
// Within one process the lease is shared by every Store on the same path
// (tests open two; the daemon and its HTTP trigger share one), counted so
// the last Close releases it.
var leases = struct {
	sync.Mutex
	held map[string]*lease
}{held: map[string]*lease{}}

type lease struct {
	f    *os.File
	refs int
}

// leasePoll is how often a --wait open tries the lock again.
const leasePoll = 50 * time.Millisecond

// acquireLease takes the writer lease on the state file at abs, waiting up
// to wait for a holder to let go.
func acquireLease(abs, holder string, wait time.Duration) (release func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		release, held, err := tryLease(abs, holder)
		if err != nil || held == nil {
			return release, err
		}
		if !time.Now().Before(deadline) {
			return nil, held
		}
		time.Sleep(min(leasePoll, time.Until(deadline)))
	}
}

// tryLease makes one attempt; a lease held elsewhere is returned as held.
// The holder's name is read after the process-wide lock is let go: the
// read may wait for the holder to write it.
func tryLease(abs, holder string) (func(), *HeldError, error) {
	release, refused, err := lockLease(abs, holder)
	if refused == nil {
		return release, nil, err
	}
	defer refused.Close()
	return nil, &HeldError{Path: abs, Holder: readHolder(refused)}, nil
}

// lockLease takes the lease, or returns the open lease file when another
// process holds it.
func lockLease(abs, holder string) (release func(), refused *os.File, err error) {
	leases.Lock()
	defer leases.Unlock()
	if l, ok := leases.held[abs]; ok {
		l.refs++
		return func() { releaseLease(abs) }, nil, nil
	}
	f, err := os.OpenFile(abs+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("take the writer lease: %w", err)
	}
	ok, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("take the writer lease on %s: %w", f.Name(), err)
	}
	if !ok {
		return nil, f, nil
	}
	// Who holds it, for the next process's refusal. A failed write only
	// makes that message vaguer; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(holder+"\n"), 0)
	}
	leases.held[abs] = &lease{f: f, refs: 1}
	return func() { releaseLease(abs) }, nil, nil
}

// holderWait bounds how long a refused process waits for the holder's
// name: a holder writes it just after it takes the lock, so a process
// refused in between would otherwise find the file empty.
const holderWait = 250 * time.Millisecond

// readHolder reads the holder's name from the lease file, whole (the
// holder ends it with a newline), or "" when none appears in holderWait.
func readHolder(f *os.File) string {
	deadline := time.Now().Add(holderWait)
	for {
		b, _ := io.ReadAll(io.NewSectionReader(f, 0, 512))
		if bytes.HasSuffix(b, []byte("\n")) || !time.Now().Before(deadline) {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func releaseLease(abs string) {
	leases.Lock()
	defer leases.Unlock()
	l, ok := leases.held[abs]
	if !ok {
		return
	}
	if l.refs--; l.refs > 0 {
		return
	}
	delete(leases.held, abs)
	l.f.Truncate(0)
	unlockFile(l.f)
	l.f.Close()
}

// holderName describes this process for the lease file: the command
// ("engine sync"), its pid and when it took the lease.
func holderName(name string, at time.Time) string {
	if name == "" {
		name = commandName(os.Args)
	}
	return fmt.Sprintf("%s, pid %d, since %s", name, os.Getpid(), at.UTC().Format(time.RFC3339))
}

// commandName is the program and its first non-flag argument: "engine run".
func commandName(args []string) string {
	if len(args) == 0 {
		return "casesync"
	}
	name := filepath.Base(args[0])
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			return name + " " + a
		}
	}
	return name
}
