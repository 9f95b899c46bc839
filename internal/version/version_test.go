package version

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name      string
		bi        *debug.BuildInfo
		want      string
		userAgent string
	}{
		{
			name: "release",
			bi: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "false"}}},
			want:      "casesync v1.2.0 (revision 0123456789abcdef0123, 2026-01-02T03:04:05Z, go1.26.0)",
			userAgent: "casesync/v1.2.0",
		},
		{
			name: "checkout with edits",
			bi: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			want:      "casesync (devel) (revision 0123456789abcdef0123, modified, go1.26.0)",
			userAgent: "casesync/devel-0123456789ab",
		},
		{
			name:      "no vcs stamp",
			bi:        &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			want:      "casesync (devel) (revision unknown, go1.26.0)",
			userAgent: "casesync/devel",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := read(func() (*debug.BuildInfo, bool) { return tt.bi, true })
			if got.String() != tt.want {
				t.Errorf("String() = %q, want %q", got.String(), tt.want)
			}
			if got.UserAgent() != tt.userAgent {
				t.Errorf("UserAgent() = %q, want %q", got.UserAgent(), tt.userAgent)
			}
		})
	}
}
