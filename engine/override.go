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

// ChainedAfter lists, sorted, the pipelines whose trigger.after names done:
// the one definition of a chain, for sync, the daemon and RunOrder.
func (p *Plan) ChainedAfter(done string) []string {
	var out []string
	for _, m := range p.Order {
		for _, after := range p.Pipelines[m].Spec.Trigger.After {
			if after == done {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// RunOrder lists the pipelines that start on their own (no trigger.after),
// sorted, each followed by the pipelines chained after it: the order a
// demo, a test or an operator runs a whole deployment in. Pipelines only
// reachable through a cycle come last.
func (p *Plan) RunOrder() []string {
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, m := range p.ChainedAfter(n) {
			visit(m)
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
