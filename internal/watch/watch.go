package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits after the last relevant
// event before it signals: one editor save is several events.
const DefaultDebounce = 150 * time.Millisecond

// Options configure New.
type Options struct {
	// Dirs are the directories to watch.
	Dirs []string
	// Recursive also watches every subdirectory (except hidden ones,
	// cue.mod and testdata), including those created later.
	Recursive bool
	// Debounce is the quiet period before a signal; 0 means DefaultDebounce.
	Debounce time.Duration
	// Poll, when positive, also rescans the files every Poll and signals
	// when their names, sizes or modification times changed: the fallback
	// for network file systems, which send no events.
	Poll time.Duration
	// NoEvents skips fsnotify and relies on Poll alone.
	NoEvents bool
	// Relevant reports whether a changed path matters; nil means Relevant.
	Relevant func(path string) bool
	// Log receives watch errors and, at debug level, the changed paths.
	Log *slog.Logger
}

// Watcher signals on Changes when relevant files under its directories
// changed. Lifecycle:
//  1. New adds the watches (and takes the first poll snapshot);
//  2. the owner calls Run in one goroutine and reads Changes; Run returns
//     when ctx ends, after closing the fsnotify watcher;
//  3. Close releases the watches if Run was never called; it is safe to
//     call twice and after Run.
type Watcher struct {
	opts    Options
	fsw     *fsnotify.Watcher // nil with NoEvents
	changes chan []string
	snap    map[string]fileStamp

	closeOnce sync.Once
	closeErr  error
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// New starts watching opts.Dirs. When the system refuses a watch (Linux's
// per-user inotify limit shows as "no space left on device"), the error
// says so and suggests polling.
func New(opts Options) (*Watcher, error) {
	if len(opts.Dirs) == 0 {
		return nil, errors.New("watch: no directories")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Relevant == nil {
		opts.Relevant = Relevant
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.NoEvents && opts.Poll <= 0 {
		return nil, errors.New("watch: NoEvents needs a Poll interval")
	}
	w := &Watcher{opts: opts, changes: make(chan []string)}
	if !opts.NoEvents {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, fmt.Errorf("watch: %w", hint(err))
		}
		w.fsw = fsw
		for _, d := range opts.Dirs {
			if err := w.add(d); err != nil {
				fsw.Close()
				return nil, err
			}
		}
	}
	if opts.Poll > 0 {
		w.snap = w.scan()
	}
	return w, nil
}

// hint explains the inotify limit, whose errno reads like a full disk.
func hint(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) {
		return fmt.Errorf("%w (the per-user inotify limit is reached: raise fs.inotify.max_user_watches, or poll with --poll)", err)
	}
	return err
}

// add watches dir and, when recursive, its subdirectories.
func (w *Watcher) add(dir string) error {
	if !w.opts.Recursive {
		if err := w.fsw.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, hint(err))
		}
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if err := w.fsw.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, hint(err))
		}
		return nil
	})
}

func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "cue.mod" || name == "testdata" || name == "node_modules"
}

// Changes receives the sorted paths that changed in each burst. Bursts
// that arrive while the owner is busy are merged and delivered together
// when it next reads, so a slow reload never misses a save.
func (w *Watcher) Changes() <-chan []string { return w.changes }

// Run delivers changes until ctx ends. It must be called once.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		poll   <-chan time.Time
	)
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	if w.opts.Poll > 0 {
		t := time.NewTicker(w.opts.Poll)
		defer t.Stop()
		poll = t.C
	}
	// One debounce timer, stopped until the first relevant event.
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	pending := map[string]bool{} // seen, debounce running
	unsent := map[string]bool{}  // debounced, waiting for the owner
	touch := func(path string) {
		pending[path] = true
		debounce.Reset(w.opts.Debounce)
	}
	for {
		var out chan<- []string
		var batch []string
		if len(unsent) > 0 {
			out = w.changes
			batch = sortedKeys(unsent)
		}
		select {
		case out <- batch:
			clear(unsent)
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil // closed: stop
			}
			w.event(ev, touch)
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were dropped: assume something relevant was among them.
				touch("(overflow)")
				continue
			}
			w.opts.Log.Warn("spec watcher error", "error", err)
		case <-poll:
			snap := w.scan()
			for _, p := range diff(w.snap, snap) {
				touch(p)
			}
			w.snap = snap
		case <-debounce.C:
			for p := range pending {
				unsent[p] = true
			}
			clear(pending)
		}
	}
}

func (w *Watcher) event(ev fsnotify.Event, touch func(string)) {
	if ev.Op == fsnotify.Chmod {
		return // editors and backups touch modes; the content is the same
	}
	if ev.Has(fsnotify.Create) && w.opts.Recursive {
		if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() && !skipDir(filepath.Base(ev.Name)) {
			// A new folder may arrive with files already in it (mv, git
			// checkout): watch it and treat it as a change.
			if err := w.add(ev.Name); err != nil {
				w.opts.Log.Warn("spec watcher: cannot watch new folder", "error", err)
			}
			touch(ev.Name)
			return
		}
	}
	if w.opts.Relevant(ev.Name) {
		touch(ev.Name)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// scan stamps every relevant file, for polling.
func (w *Watcher) scan() map[string]fileStamp {
	out := map[string]fileStamp{}
	for _, dir := range w.opts.Dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a vanished file shows as missing from the snapshot
			}
			if d.IsDir() {
				if p != dir && (!w.opts.Recursive || skipDir(d.Name())) {
					return filepath.SkipDir
				}
				return nil
			}
			if !w.opts.Relevant(p) {
				return nil
			}
			// Stat follows symlinks (Kubernetes mounts files as links).
			if fi, err := os.Stat(p); err == nil {
				out[p] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
			}
			return nil
		})
	}
	return out
}

// diff lists paths added, removed or changed between two snapshots.
func diff(a, b map[string]fileStamp) []string {
	var out []string
	for p, sb := range b {
		if sa, ok := a[p]; !ok || sa != sb {
			out = append(out, p)
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			out = append(out, p)
		}
	}
	return out
}

// Close releases the watches; it is safe to call twice.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		if w.fsw != nil {
			w.closeErr = w.fsw.Close()
		}
	})
	return w.closeErr
}

// Relevant is the default filter: CUE files and lookup tables (.csv,
// .json) matter; editor debris (dotfiles such as .x.cue.swp, backups
// ending in ~, emacs #autosave#, vim's 4913 probe, .tmp/.bak/.orig) and
// SQLite's -wal/-shm/-journal companions do not. Kubernetes' "..data"
// symlink swap of a mounted ConfigMap is relevant.
func Relevant(path string) bool {
	base := filepath.Base(path)
	if base == "..data" {
		return true
	}
	if base == "" || base == "4913" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "#") || strings.HasSuffix(base, "~") {
		return false
	}
	for _, s := range []string{"-wal", "-shm", "-journal", ".swp", ".swx", ".tmp", ".bak", ".orig"} {
		if strings.HasSuffix(base, s) {
			return false
		}
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".cue", ".csv", ".json":
		return true
	}
	return false
}
