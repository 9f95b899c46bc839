// Package manifest builds the data-sharing manifest of a deployment from
// its loaded plan, and only from it: per pipeline, which fields leave
// which system for which, the filters that gate them (consent rules
// quoted with their spec position), the lookups that transform them,
// their sensitivity class, the schedule, and what the state file keeps.
// Because nothing in it is written by hand, it can be attached to a
// data-sharing agreement or a DPIA and regenerated on every change.
package manifest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"casesync/engine"
	"casesync/engine/mapping"
)

// Manifest is one deployment's data flows.
type Manifest struct {
	Deployment string      `json:"deployment"`
	Systems    []System    `json:"systems"`
	Pipelines  []Pipeline  `json:"pipelines"`
	Classes    []ClassRule `json:"classes"`
	State      []string    `json:"state"`
}

// System is a connector: a system data is read from or sent to.
type System struct {
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
}

// ClassRule is one entry of the deployment's sensitivity block.
type ClassRule struct {
	Field string `json:"field"`
	Class string `json:"class"`
}

// Pipeline is one flow of data.
type Pipeline struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Trigger     string    `json:"trigger"`
	Spec        string    `json:"spec"`
	Gates       []Gate    `json:"gates"`
	FanOut      string    `json:"fan_out,omitempty"`
	Fields      []Field   `json:"fields"`
	Requests    []Request `json:"requests,omitempty"`
	Lookups     []Lookup  `json:"lookups,omitempty"`
	Mode        string    `json:"mode"`
	Keeps       []string  `json:"state_keeps"`
}

// Gate is a filter a record must pass before anything of it is sent.
type Gate struct {
	Reason  string `json:"reason"`
	Rule    string `json:"rule"`
	Consent bool   `json:"consent"`
	Spec    string `json:"spec"`
}

// Field is one field sent to the target.
type Field struct {
	Name string `json:"name"`
	// Class is the field's sensitivity ("" when it has none); ClassFrom
	// the field name the class is declared on.
	Class     string   `json:"class,omitempty"`
	ClassFrom string   `json:"class_from,omitempty"`
	Sources   []string `json:"sources,omitempty"`
	Constant  bool     `json:"constant,omitempty"`
	Lookups   []string `json:"lookups,omitempty"`
	Spec      string   `json:"spec"`
}

// Request is a request other than the write that carries record data:
// an enrich step, an after-step or its status poll.
type Request struct {
	Kind      string   `json:"kind"` // enrich, after
	Name      string   `json:"name"`
	System    string   `json:"system"`
	Method    string   `json:"method"`
	Path      string   `json:"path"`
	Sources   []string `json:"sources,omitempty"`
	Spec      string   `json:"spec"`
	Attaches  string   `json:"attaches,omitempty"`
	Condition string   `json:"condition,omitempty"`
}

// Lookup is a lookup a pipeline's fields go through.
type Lookup struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	OnMiss string `json:"on_miss"`
}

// Build builds the manifest of plan.
func Build(plan *engine.Plan) *Manifest {
	m := &Manifest{Deployment: plan.Name}
	names := make([]string, 0, len(plan.Connectors))
	for n := range plan.Connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := plan.Connectors[n]
		addr := c.Spec.BaseURL
		if c.Spec.SQL != nil {
			// The DSN is a secret: only its name is shown.
			addr = "SQL database (DSN in secret " + c.Spec.SQL.DSN.Secret + ")"
			if c.Spec.SQL.DSN.Secret == "" {
				addr = "SQL database"
			}
		}
		m.Systems = append(m.Systems, System{Name: n, BaseURL: addr})
	}
	for f, c := range plan.Spec.Sensitivity {
		m.Classes = append(m.Classes, ClassRule{Field: f, Class: c})
	}
	sort.Slice(m.Classes, func(i, j int) bool { return m.Classes[i].Field < m.Classes[j].Field })
	for _, name := range plan.Order {
		m.Pipelines = append(m.Pipelines, pipeline(plan, plan.Pipelines[name]))
	}
	m.State = stateRules
	return m
}

// stateRules say what the state file keeps of every pipeline and for how
// long; they follow internal/state's schema.
var stateRules = []string{
	"Never a payload, a name or any other field value: record keys (the source system's ids), target ids, payload hashes (SHA-256), outcomes with reason codes, and error texts with classified values replaced by their class.",
	"Kept until the state file is deleted: the state has no expiry. Links are needed for as long as the linked records exist (they are what prevents duplicates); runs, outcomes and the audit trail accumulate as the operating history.",
	"A webhook delivery's body is kept only while it waits to be processed, and only when the inbox cannot re-fetch the record by key; it is erased (and the write-ahead log truncated) once processed.",
	"The file is readable by its owner only (0600).",
}

func pipeline(plan *engine.Plan, p *engine.Pipeline) Pipeline {
	out := Pipeline{Name: p.Name, Description: p.Spec.Description, Spec: p.Pos,
		From: p.Source.Connector, To: p.Upsert.Connector, Trigger: trigger(p), Mode: mode(p)}
	for _, f := range p.Filters {
		rule := f.Expr.String()
		out.Gates = append(out.Gates, Gate{Reason: f.Reason, Rule: rule, Spec: f.Pos,
			Consent: strings.Contains(strings.ToLower(rule+f.Reason), "consent")})
	}
	// A fan-out or a field may end the record with skip("reason"): a
	// gate too, written where the data it needs is at hand.
	if p.Each != nil {
		out.FanOut = p.Each.JQ.String()
		for _, r := range skipReasons(p.Each.JQ.String()) {
			out.Gates = append(out.Gates, Gate{Reason: r, Rule: "skip in each", Spec: p.Pos})
		}
	}
	if p.Map != nil {
		for _, f := range p.Map.Fields {
			if f.Value != nil && f.Value.JQ != nil {
				for _, r := range skipReasons(f.Value.JQ.String()) {
					out.Gates = append(out.Gates, Gate{Reason: r, Rule: "skip in map field " + f.Name, Spec: f.Pos})
				}
			}
		}
	}
	used := map[string]bool{}
	if p.Map != nil {
		for _, f := range p.Map.Fields {
			out.Fields = append(out.Fields, fields(plan, f, "", used)...)
		}
	}
	for _, e := range p.Enrich {
		r := request("enrich", e.Name, e.Connector, &e.Request, e.Pos)
		r.Attaches = e.As
		if e.When != nil {
			r.Condition = e.When.String()
		}
		out.Requests = append(out.Requests, r)
	}
	for _, a := range p.After {
		r := request("after", a.Name, a.Connector, &a.Request, a.Pos)
		if a.When != nil {
			r.Condition = a.When.String()
		}
		out.Requests = append(out.Requests, r)
		if a.Poll != nil {
			out.Requests = append(out.Requests, request("poll", a.Name, a.Connector, &a.Poll.Request, a.Pos))
		}
	}
	for _, name := range sortedKeys(used) {
		out.Lookups = append(out.Lookups, lookup(plan, name))
	}
	out.Keeps = keeps(p)
	return out
}

func trigger(p *engine.Pipeline) string {
	t := p.Spec.Trigger
	var parts []string
	if t.Cron != "" {
		parts = append(parts, "cron "+t.Cron)
	}
	if len(t.After) > 0 {
		parts = append(parts, "after "+strings.Join(t.After, ", "))
	}
	if p.Inbox != nil {
		parts = append(parts, "webhook inbox "+p.Inbox.Path)
	}
	if len(parts) == 0 {
		return "manual only"
	}
	return strings.Join(parts, "; ") + "; also by hand"
}

func mode(p *engine.Pipeline) string {
	switch p.Upsert.Mode {
	case "create_only":
		return "creates records, never updates them"
	case "update_only":
		return "updates records the target already has, never creates"
	}
	return "creates or updates"
}

func keeps(p *engine.Pipeline) []string {
	var out []string
	if c := p.Source.Cursor; c != nil {
		out = append(out, "cursor: the time up to which "+p.Source.Connector+" was read")
	}
	link := p.Upsert.LinkSystem
	if link == "" {
		link = p.Upsert.Connector
	}
	out = append(out,
		"per record: the "+p.Source.Connector+" record key, the last outcome and its reason code, the "+link+" id and the payload hash")
	if !p.Upsert.Native {
		// A native target's row id is its upsert key: the per-record
		// line above holds it, and no link is written.
		out = append(out, "links: "+p.Source.Connector+" record key ↔ "+link+" id")
	}
	out = append(out,
		"failed records: key, attempts, reason code and error text (classified values removed) until they succeed or are parked")
	if p.Source.Updated != nil {
		out = append(out, "the hash of each handled record's updated time with the spec hash (not the time itself)")
	}
	if p.Inbox != nil && p.Inbox.Fetch == nil {
		out = append(out, "webhook bodies while they wait to be processed, then erased")
	}
	return out
}

// fields flattens a mapped field (nested fields and each-maps included).
func fields(plan *engine.Plan, f mapping.Field, prefix string, used map[string]bool) []Field {
	name := prefix + f.Name
	v := f.Value
	if v != nil && (v.Fields != nil || v.Map != nil) {
		nested, sep := v.Fields, "."
		if v.Map != nil {
			nested, sep = v.Map, "[]."
		}
		var out []Field
		for _, nf := range nested {
			out = append(out, fields(plan, nf, name+sep, used)...)
		}
		return out
	}
	class, via := plan.MapFieldClass(f)
	fd := Field{Name: name, Class: class, Spec: f.Pos, Sources: engine.SourceFields(v)}
	if class != "" {
		fd.ClassFrom = via
	}
	if v != nil && v.HasConst {
		fd.Constant = true
	}
	fd.Lookups = lookupsOf(v)
	for _, l := range fd.Lookups {
		used[l] = true
	}
	return []Field{fd}
}

var skipCall = regexp.MustCompile(`\bskip\("([a-z][a-z0-9_]*)"\)`)

// skipReasons lists the literal reasons a program skips a record with.
func skipReasons(src string) []string {
	seen := map[string]bool{}
	for _, m := range skipCall.FindAllStringSubmatch(src, -1) {
		seen[m[1]] = true
	}
	return sortedKeys(seen)
}

var lookupCall = regexp.MustCompile(`r?lookup\("([a-z][a-z0-9_]*)"\)`)

// lookupsOf lists the lookups a value's programs call, through the
// helpers they use included.
func lookupsOf(v *mapping.Value) []string {
	if v == nil {
		return nil
	}
	var srcs []string
	if v.JQ != nil {
		srcs = append(srcs, engine.JQText(v.JQ.Source()))
	}
	if v.Expr != nil {
		srcs = append(srcs, v.Expr.String())
	}
	seen := map[string]bool{}
	for _, s := range srcs {
		for _, m := range lookupCall.FindAllStringSubmatch(s, -1) {
			seen[m[1]] = true
		}
	}
	return sortedKeys(seen)
}

func request(kind, name, connector string, r *engine.Request, pos string) Request {
	out := Request{Kind: kind, Name: name, System: connector, Method: r.Method, Spec: pos}
	if out.Method == "" {
		out.Method = "GET"
	}
	if r.Path != nil {
		out.Path = r.Path.String()
	}
	var q []string
	for _, p := range r.Query {
		if p.Value != nil {
			q = append(q, p.Name+"="+p.Value.String())
		}
	}
	if len(q) > 0 {
		out.Path += "?" + strings.Join(q, "&")
	}
	if r.Body != nil {
		out.Sources = engine.SourceFields(r.Body)
	}
	return out
}

func lookup(plan *engine.Plan, name string) Lookup {
	ls, ok := plan.Spec.Lookups[name]
	if !ok {
		return Lookup{Name: name, Kind: "lib"}
	}
	kind := "inline table"
	switch {
	case ls.File != "":
		kind = "table " + ls.File
	case ls.Rule != nil:
		kind = fmt.Sprintf("rule %q", ls.Rule.Forward)
	case ls.API != nil:
		kind = "live request to " + ls.API.Connector
	case ls.SQL != nil:
		kind = "table read from " + ls.SQL.Connector + " once per run"
	}
	onMiss := ls.OnMiss
	if onMiss == "" {
		onMiss = "fail"
	}
	return Lookup{Name: name, Kind: kind, OnMiss: onMiss}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
