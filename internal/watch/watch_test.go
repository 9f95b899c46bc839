package watch_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/watch"
)

// start runs a watcher on opts until the test ends.
func start(t *testing.T, opts watch.Options) *watch.Watcher {
	t.Helper()
	w, err := watch.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ctx := t.Context()
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() { <-done })
	return w
}

// next waits for the next batch of changed paths.
func next(t *testing.T, w *watch.Watcher) []string {
	t.Helper()
	select {
	case paths := <-w.Changes():
		return paths
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
		return nil
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatcher_WriteIsReported(t *testing.T) {
	dir := t.TempDir()
	w := start(t, watch.Options{Dirs: []string{dir}})
	p := filepath.Join(dir, "a.cue")
	write(t, p, "package a\n")
	if diff := cmp.Diff([]string{p}, next(t, w)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
}

// Editors save by writing a temporary file and renaming it over the
// original; the directory watch sees the new name appear.
func TestWatcher_WriteTempThenRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.cue")
	write(t, p, "package a\n")
	w := start(t, watch.Options{Dirs: []string{dir}})
	for i := range 3 { // three saves: each must be seen, not only the first
		tmp := filepath.Join(dir, ".a.cue.tmp1234")
		write(t, tmp, "package a\n// save "+string(rune('0'+i))+"\n")
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{p}, next(t, w)); diff != "" {
			t.Fatalf("save %d: batch (-want +got):\n%s", i, diff)
		}
	}
}

// Debris never triggers a change: the next batch holds only the sentinel
// written after it.
func TestWatcher_IgnoresDebrisAndStateFiles(t *testing.T) {
	dir := t.TempDir()
	w := start(t, watch.Options{Dirs: []string{dir}})
	for _, name := range []string{".a.cue.swp", "a.cue~", "#a.cue#", "4913", "casesync.db", "casesync.db-wal", "casesync.db-shm",
		"casesync.db-journal", "casesync.db-intents", "casesync.db-intents.tmp", "notes.txt", "a.cue.bak", ".hidden.cue"} {
		write(t, filepath.Join(dir, name), "x")
	}
	if err := os.Chmod(filepath.Join(dir, "notes.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(dir, "table.csv")
	write(t, sentinel, "a,b\n")
	if diff := cmp.Diff([]string{sentinel}, next(t, w)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
}

// A burst of writes within the debounce period is one batch.
func TestWatcher_DebouncesABurst(t *testing.T) {
	dir := t.TempDir()
	w := start(t, watch.Options{Dirs: []string{dir}, Debounce: 300 * time.Millisecond})
	a, b := filepath.Join(dir, "a.cue"), filepath.Join(dir, "b.json")
	for i := range 20 {
		write(t, a, "package a\n// "+string(rune('a'+i))+"\n")
		write(t, b, "{}")
	}
	if diff := cmp.Diff([]string{a, b}, next(t, w)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	sentinel := filepath.Join(dir, "c.cue")
	write(t, sentinel, "package a\n")
	if diff := cmp.Diff([]string{sentinel}, next(t, w)); diff != "" {
		t.Errorf("the burst was reported twice: batch after it (-want +got):\n%s", diff)
	}
}

// Changes made while the owner is busy are merged, not dropped.
func TestWatcher_MergesWhileOwnerIsBusy(t *testing.T) {
	dir := t.TempDir()
	w := start(t, watch.Options{Dirs: []string{dir}, Debounce: 20 * time.Millisecond})
	a := filepath.Join(dir, "a.cue")
	write(t, a, "package a\n")
	first := next(t, w)
	if diff := cmp.Diff([]string{a}, first); diff != "" {
		t.Fatalf("first batch (-want +got):\n%s", diff)
	}
	b, c := filepath.Join(dir, "b.cue"), filepath.Join(dir, "c.cue")
	write(t, b, "package a\n")
	write(t, c, "package a\n")
	got := map[string]bool{}
	for !got[b] || !got[c] {
		for _, p := range next(t, w) {
			got[p] = true
		}
	}
}

func TestWatcher_RecursiveWatchesNewFolders(t *testing.T) {
	root := t.TempDir()
	w := start(t, watch.Options{Dirs: []string{root}, Recursive: true})
	sub := filepath.Join(root, "lib", "primero")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	next(t, w) // the new folder itself
	p := filepath.Join(sub, "primero.cue")
	write(t, p, "package primero\n")
	for {
		batch := next(t, w)
		if len(batch) > 0 && batch[len(batch)-1] == p {
			return
		}
	}
}

func TestWatcher_PollWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.cue")
	write(t, p, "package a\n")
	w := start(t, watch.Options{Dirs: []string{dir}, NoEvents: true, Poll: 20 * time.Millisecond, Debounce: 10 * time.Millisecond})
	q := filepath.Join(dir, "b.cue")
	write(t, q, "package a\n")
	if diff := cmp.Diff([]string{q}, next(t, w)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{p}, next(t, w)); diff != "" {
		t.Errorf("batch after a removal (-want +got):\n%s", diff)
	}
}

func TestRelevant(t *testing.T) {
	for name, want := range map[string]bool{
		"a.cue": true, "lookups/province.csv": true, "table.JSON": true, "..data": true,
		".a.cue.swp": false, "a.cue~": false, "#a.cue#": false, "4913": false, "casesync.db-wal": false,
		"casesync.db-shm": false, "casesync.db": false, "casesync.db-intents": false, "casesync.db-intents.tmp": false, "x.tmp": false, "README.md": false, ".git": false,
	} {
		if got := watch.Relevant(name); got != want {
			t.Errorf("Relevant(%q) = %v, want %v", name, got, want)
		}
	}
}
