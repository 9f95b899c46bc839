// Package version says which build of casesync is running, from the Go
// build information, so an admin can report it and a remote system's logs
// can tell our requests apart (User-Agent).
package version

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Set by -ldflags "-X casesync/internal/version.revision=… -X …time=…" in
// builds without a .git folder (the Dockerfile); the build info's vcs
// settings win when present.
var (
	revision  string
	buildTime string
	version   string
)

// Info is what the binary knows about its own build.
type Info struct {
	// Version is the module version (v1.2.3 for `go install …@v1.2.3`,
	// "(devel)" for a build in a checkout).
	Version string
	// Revision is the VCS commit, or "unknown" when the build recorded
	// none (go build -buildvcs=false, or a copy without .git).
	Revision string
	// Time is the commit time, RFC 3339, or "".
	Time string
	// Modified is true when the work tree had uncommitted changes.
	Modified bool
	// Go is the toolchain that built the binary.
	Go string
}

var (
	once sync.Once
	info Info
)

// Get reads the build information once.
func Get() Info {
	once.Do(func() { info = read(debug.ReadBuildInfo) })
	return info
}

func read(buildInfo func() (*debug.BuildInfo, bool)) Info {
	in := Info{Version: version, Revision: revision, Time: buildTime}
	if bi, ok := buildInfo(); ok {
		in.Go = bi.GoVersion
		if in.Version == "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	if in.Revision == "" {
		in.Revision = "unknown"
	}
	return in
}

// String is the one line `engine --version` prints.
func (i Info) String() string {
	s := fmt.Sprintf("casesync %s (revision %s", i.Version, i.Revision)
	if i.Modified {
		s += ", modified"
	}
	if i.Time != "" {
		s += ", " + i.Time
	}
	if i.Go != "" {
		s += ", " + i.Go
	}
	return s + ")"
}

// UserAgent is sent on every outbound request: casesync/<version>, with
// the short revision for a development build, whose version says nothing.
func (i Info) UserAgent() string {
	v := i.Version
	if v == "(devel)" || v == "" {
		v = "devel"
		if r := i.Revision; r != "unknown" && r != "" {
			v += "-" + r[:min(len(r), 12)]
		}
	}
	return "casesync/" + v
}
