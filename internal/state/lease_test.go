package state

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leaseHelperEnv makes the test binary, re-run as a child, open a state file
// and hold it: the other process of the lease tests.
const leaseHelperEnv = "CASESYNC_TEST_LEASE_HOLD"

// TestLeaseHelper is the child's side; it does nothing in a normal run.
func TestLeaseHelper(t *testing.T) {
	path := os.Getenv(leaseHelperEnv)
	if path == "" {
		t.Skip("the lease tests' child process; runs only when they start it")
	}
	s, err := Open(path, WithHolder("engine sync"))
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	fmt.Println("held")
	// Holds until stdin closes (the parent's "let go") or it is killed.
	bufio.NewReader(os.Stdin).ReadString('\n')
	s.Close()
	os.Exit(0)
}

// holdInChild starts a child process holding path's lease and returns it
// once it holds it.
func holdInChild(t *testing.T, path string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaseHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), leaseHelperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "held" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd, func() { stdin.Close() }
}

// TestOpen_LeaseRefusesASecondWriter: while another process holds the
// state file, a writing open is refused at once with who holds it, or
// waits with WithWait; a killed holder's lease is free at once.
func TestOpen_LeaseRefusesASecondWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	child, _ := holdInChild(t, path)

	_, err := Open(path)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("Open while held = %v, want a HeldError", err)
	}
	want := fmt.Sprintf("state %s is held by engine sync, pid %d, since ", path, child.Process.Pid)
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "trigger the pipeline through the daemon or stop it") {
		t.Errorf("refusal = %q, want it to start %q and say what to do", err, want)
	}
	start := time.Now()
	if _, err := Open(path, WithWait(200*time.Millisecond)); !errors.Is(err, ErrHeld) {
		t.Fatalf("Open with a short wait = %v, want ErrHeld", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("gave up after %v, want the 200ms wait", waited)
	}
	// Read-only commands never need the lease.
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("read-only open while held: %v", err)
	}
	ro.Close()

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	if _, err := s.StartRun(t.Context(), "p", "h", "test", t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestOpen_LeaseWaitsForTheHolder: with WithWait, the open goes ahead once
// the holder closes.
func TestOpen_LeaseWaitsForTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	_, letGo := holdInChild(t, path)
	time.AfterFunc(300*time.Millisecond, letGo)
	s, err := Open(path, WithWait(30*time.Second))
	if err != nil {
		t.Fatalf("Open with --wait: %v", err)
	}
	s.Close()
}

// TestOpen_LeaseSharedWithinAProcess: Stores of one process on one file
// share the lease, and it is released with the last Close.
func TestOpen_LeaseSharedWithinAProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatalf("second Store in the same process: %v", err)
	}
	a.Close()
	if _, err := b.StartRun(t.Context(), "p", "h", "test", t0); err != nil {
		t.Fatal(err)
	}
	b.Close()
	leases.Lock()
	n := len(leases.held)
	leases.Unlock()
	if n != 0 {
		t.Errorf("%d leases still held after every Close", n)
	}
}

func TestCommandName(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"/usr/local/bin/engine", "run", "--specs", "x"}, "engine run"},
		{[]string{"engine", "--state=x.db", "sync"}, "engine sync"},
		{[]string{"engine"}, "engine"},
		{nil, "casesync"},
	}
	for _, tc := range tests {
		if got := commandName(tc.args); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestTryLease_WaitsForTheHolderName: a process refused between the
// holder's lock and its writing its name still names the holder (a CI run
// saw the refusal without the pid).
func TestTryLease_WaitsForTheHolderName(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "state.db")
	f, err := os.OpenFile(abs+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := lockFile(f); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		time.Sleep(50 * time.Millisecond)
		f.WriteAt([]byte("engine sync, pid 42, since 2026-12-06T00:00:00Z\n"), 0)
	}()
	_, held, err := tryLease(abs, "engine run")
	<-written
	if err != nil || held == nil {
		t.Fatalf("tryLease = %v, %v; want refused", held, err)
	}
	if want := "engine sync, pid 42, since 2026-12-06T00:00:00Z"; held.Holder != want {
		t.Errorf("holder %q, want %q", held.Holder, want)
	}
}
