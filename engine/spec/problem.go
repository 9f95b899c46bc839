package spec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a spec.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// Path is the dotted CUE path of the field, e.g. pipelines.cases.map.sex.
	Path string `json:"path"`
	Code string `json:"code"`
	Msg  string `json:"message"`
	Hint string `json:"hint,omitempty"`
	// places are the files:lines of a conflict's values, to merge the
	// conflicts of one thing defined twice into one problem.
	places []string
}

// Pos renders file:line:col (or less when unknown).
func (p Problem) Pos() string {
	switch {
	case p.File == "":
		return "-"
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Pos())
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Code)
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one load. It implements error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ExitCode is 1: the spec has problems.
func (ps Problems) ExitCode() int { return 1 }

// Sort orders problems by file, line, column, then code, and drops exact
// duplicates (CUE reports one conflict once per disjunct).
func (ps Problems) Sort() Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Code < b.Code
	})
	out := ps[:0]
	for i, p := range ps {
		if i > 0 {
			q := ps[i-1]
			if q.File == p.File && q.Line == p.Line && q.Col == p.Col && q.Path == p.Path && q.Code == p.Code {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// JSON renders problems for editors and CI.
func (ps Problems) JSON() []byte {
	if ps == nil {
		ps = Problems{}
	}
	b, _ := json.MarshalIndent(ps, "", "  ")
	return append(b, '\n')
}

// Codes maps every problem code to the one-line hint shown with it;
// docs/problem-codes.md explains each with an example and the fix
// (TestCodes_Documented keeps the two in step).
var Codes = map[string]string{
	"insecure-url":         "a warning: use an https:// base_url, or a loopback address for a local proxy",
	"unclassified-field":   "a warning: classify the field in the deployment's sensitivity block (pii, health, protection) or declare it \"none\"",
	"syntax":               "fix the CUE syntax at this position",
	"load":                 "the folder or an import could not be read",
	"unknown-field":        "check the spelling; `engine check --help` lists the spec language",
	"bad-name":             "names of connectors, lookups and pipelines are lowercase letters, digits and _, starting with a letter; secret names are UPPER_CASE",
	"missing-field":        "this field is required here",
	"wrong-type":           "the value has the wrong type for this field",
	"conflict":             "the deployment's files set this field to different values: keep one",
	"bad-value":            "the value is outside what this field accepts",
	"incomplete":           "give this field a concrete value",
	"inline-secret":        "write {secret: \"NAME\"} and declare NAME in secrets; never the value",
	"undeclared-secret":    "add the name to the deployment's secrets list",
	"one-of":               "set exactly one of the alternatives",
	"bad-jq":               "fix the jq program; positions point inside it",
	"bad-expr":             "fix the expr expression; record fields are record.<name>",
	"bad-template":         "templates are text with {jq} holes; write {{ and }} for braces",
	"bad-duration":         "use a Go duration such as 500ms, 30s, 5m",
	"bad-time":             "use an RFC 3339 time such as 2024-01-01T00:00:00Z",
	"bad-cron":             "use five cron fields (minute hour day month weekday) or @hourly",
	"unknown-connector":    "declare the connector under connectors or fix the name",
	"unknown-var":          "vars has no such key: check the spelling against the deployment's vars",
	"unknown-lookup":       "declare the lookup under lookups or fix the name",
	"unknown-pipeline":     "name a pipeline or branch of this deployment",
	"duplicate-pipeline":   "give the branch a name no other pipeline or branch has",
	"chain-cycle":          "pipelines chained with trigger.after must not form a cycle",
	"duplicate-inbox":      "each inbox needs its own path",
	"lookup-file":          "the lookup file must exist beside the spec and be readable",
	"lookup-column":        "name a column that exists in the file's header",
	"lookup-row":           "each row has the header's columns; quote a value that holds a comma",
	"lookup-duplicate-key": "each key may appear once; one of these rows silently loses",
	"lookup-empty-key":     "every row needs a key",
	"lookup-empty-value":   "every row needs a value (or declare on_miss for gaps)",
	"no-write":             "declare upsert.create and/or upsert.update",
	"no-find":              "a non-idempotent create needs upsert.find so a crash can't duplicate",
	"package-mismatch":     "every .cue file of a deployment has the same package name",
	"unused-import":        "remove the import, or use what it provides",
	"connector-kind":       "point this at a connector of the kind it needs (base_url for HTTP, sql for a database)",
	"bad-sql":              "write one SELECT whose only parameters are $cursor and $now (sources) or none (lookups)",
	"bad-identifier":       "a table or column name: letters, digits and _, not starting with a digit",
	"unknown-column":       "list only mapped columns as the sql upsert's key",
	"sql-after":            "drop the after-steps, or write through an HTTP target",
	"no-package":           "start every .cue file of a deployment with the same package clause",
	"no-deployment":        "point at a folder holding .cue files",
	"undefined-reference":  "the name or field referred to does not exist; check the spelling and the import",
}
