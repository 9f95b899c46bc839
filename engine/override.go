package engine

// WithBaseURLs returns a copy of the plan whose named connectors point at
// other base URLs (the demo's fakes, a staging server). The original plan
// is not touched: plans are never mutated once built.
func (p *Plan) WithBaseURLs(urls map[string]string) *Plan {
	if len(urls) == 0 {
		return p
	}
	cp := *p
	cp.Connectors = make(map[string]*Connector, len(p.Connectors))
	for name, c := range p.Connectors {
		if u, ok := urls[name]; ok {
			cc := *c
			cc.Spec.BaseURL = u
			c = &cc
		}
		cp.Connectors[name] = c
	}
	return &cp
}

// WithConcurrency returns a copy of the plan whose connectors allow n
// requests in flight and whose pipelines keep 2n records in flight, so
// that a source and a target connector are both kept busy (the bench's
// --concurrency).
func (p *Plan) WithConcurrency(n int) *Plan {
	if n <= 0 {
		return p
	}
	cp := *p
	cp.Connectors = make(map[string]*Connector, len(p.Connectors))
	for name, c := range p.Connectors {
		cc := *c
		cc.Spec.Concurrency = n
		cp.Connectors[name] = &cc
	}
	cp.Pipelines = make(map[string]*Pipeline, len(p.Pipelines))
	for name, pl := range p.Pipelines {
		pc := *pl
		pc.Concurrency = 2 * n
		cp.Pipelines[name] = &pc
	}
	return &cp
}

// ChainedAfter lists, sorted, the pipelines whose trigger.after names done,
// or the pipeline done is a branch of: the one definition of a chain, for
// sync, the daemon and RunOrder. A branch is listed with its siblings:
// they run together (Unit).
func (p *Plan) ChainedAfter(done string) []string {
	group := ""
	if d, ok := p.Pipelines[done]; ok {
		group = d.Group
	}
	var out []string
	for _, m := range p.Order {
		for _, after := range p.Pipelines[m].Spec.Trigger.After {
			if after == done || (group != "" && after == group) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Unit is what runs when pipeline name is triggered: the pipeline it is a
// branch of (run with Runner.SyncGroup), or name itself.
func (p *Plan) Unit(name string) string {
	if pl, ok := p.Pipelines[name]; ok && pl.Group != "" {
		return pl.Group
	}
	return name
}

// Members are the pipelines a run of unit runs: a group's branches, or
// unit itself.
func (p *Plan) Members(unit string) []string {
	if names, ok := p.Groups[unit]; ok {
		return names
	}
	return []string{unit}
}

// RunOrder lists the pipelines that start on their own (no trigger.after),
// sorted, each followed by the pipelines chained after it: the order a
// demo, a test or an operator runs a whole deployment in. The branches of
// one pipeline are listed together, before what is chained after them.
// Pipelines only reachable through a cycle come last.
func (p *Plan) RunOrder() []string {
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		members := p.Members(p.Unit(n))
		for _, m := range members {
			seen[m] = true
			out = append(out, m)
		}
		for _, m := range members {
			for _, c := range p.ChainedAfter(m) {
				visit(c)
			}
		}
	}
	for _, n := range p.Order {
		if len(p.Pipelines[n].Spec.Trigger.After) == 0 {
			visit(n)
		}
	}
	for _, n := range p.Order {
		visit(n)
	}
	return out
}
