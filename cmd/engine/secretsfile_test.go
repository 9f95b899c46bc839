package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSecretsFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "plain", in: "A=1\nB = two words \n", want: map[string]string{"A": "1", "B": "two words"}},
		{name: "comments and blanks", in: "# x\n\n  # y\nA=1 # note\nB=p#ss\n", want: map[string]string{"A": "1", "B": "p#ss"}},
		{name: "export", in: "export A=1\nexport\tB=2\nexporter=3\n", want: map[string]string{"A": "1", "B": "2", "exporter": "3"}},
		{name: "single quotes are literal", in: `A='$HOME # \n "x"' # c`, want: map[string]string{"A": `$HOME # \n "x"`}},
		{name: "double quotes escape", in: `A="a\"b\\c\nd\$e $F"`, want: map[string]string{"A": "a\"b\\c\nd$e $F"}},
		{name: "no expansion bare", in: "A=pa$word\n", want: map[string]string{"A": "pa$word"}},
		{name: "empty", in: "A=\nB=''\nC=\"\"\n", want: map[string]string{"A": "", "B": "", "C": ""}},
		{name: "later wins", in: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "equals in value", in: "A=x=y\n", want: map[string]string{"A": "x=y"}},
		{name: "no equals", in: "A=1\nsecretvalue\n", wantErr: "kh.env:2: want NAME=VALUE"},
		{name: "bad name", in: "1A=x\n", wantErr: "kh.env:1: want NAME=VALUE"},
		{name: "unterminated", in: "A='hunter2\n", wantErr: "kh.env:1: A: unterminated ' quote"},
		{name: "junk after quote", in: `A="x" y`, wantErr: "kh.env:1: A: text after the closing quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSecretsFile(strings.NewReader(tt.in), "kh.env")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, v := range []string{"hunter2", "secretvalue"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error %q shows a value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
