package daemon

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The metrics are written in the Prometheus text exposition format (0.0.4)
// by hand: a dozen counters, gauges and histograms do not justify
// client_golang and its dependency tree (protobuf, procfs, common), and the
// format is small enough to test line by line.

// registry holds metric families and renders them sorted by name.
type registry struct {
	mu   sync.Mutex
	fams map[string]family
}

type family interface {
	write(w *bufio.Writer)
}

func newRegistry() *registry { return &registry{fams: map[string]family{}} }

func (r *registry) register(name string, f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.fams[name]; dup {
		panic("metric registered twice: " + name)
	}
	r.fams[name] = f
}

// WriteTo renders every family.
func (r *registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.fams))
	for n := range r.fams {
		names = append(names, n)
	}
	fams := make([]family, 0, len(names))
	slices.Sort(names)
	for _, n := range names {
		fams = append(fams, r.fams[n])
	}
	r.mu.Unlock()
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		f.write(bw)
	}
	err := bw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// header writes HELP and TYPE.
func header(w *bufio.Writer, name, help, typ string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

// labelText renders {a="x",b="y"}, or "" without labels; extra is appended
// (a histogram's le).
func labelText(names, values []string, extra ...string) string {
	if len(names) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, n, escapeLabel(values[i]))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, extra[i], escapeLabel(extra[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

const labelSep = "\xff"

// counterVec is a counter family with labels.
type counterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	vals       map[string]float64
}

func (r *registry) counter(name, help string, labels ...string) *counterVec {
	c := &counterVec{name: name, help: help, labels: labels, vals: map[string]float64{}}
	r.register(name, c)
	return c
}

// Add adds v (>= 0) to the series with these label values.
func (c *counterVec) Add(v float64, values ...string) {
	if len(values) != len(c.labels) {
		panic(fmt.Sprintf("%s: %d label values for %d labels", c.name, len(values), len(c.labels)))
	}
	c.mu.Lock()
	c.vals[strings.Join(values, labelSep)] += v
	c.mu.Unlock()
}

// Inc adds one.
func (c *counterVec) Inc(values ...string) { c.Add(1, values...) }

// Value returns one series' value (tests and /status).
func (c *counterVec) Value(values ...string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vals[strings.Join(values, labelSep)]
}

func (c *counterVec) write(w *bufio.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	header(w, c.name, c.help, "counter")
	if len(c.labels) == 0 && len(c.vals) == 0 {
		fmt.Fprintf(w, "%s 0\n", c.name) // an unlabelled counter exists from the start
		return
	}
	for _, k := range sortedKeys(c.vals) {
		fmt.Fprintf(w, "%s%s %s\n", c.name, labelText(c.labels, splitKey(k, len(c.labels))), formatFloat(c.vals[k]))
	}
}

func splitKey(k string, n int) []string {
	if n == 0 {
		return nil
	}
	return strings.SplitN(k, labelSep, n)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sample is one series of a gauge or counter computed at scrape time.
type sample struct {
	values []string
	v      float64
}

// funcFamily is a gauge (or counter) read at scrape time, for values that
// live elsewhere: connector counters, queue sizes, readiness.
type funcFamily struct {
	name, help, typ string
	labels          []string
	fn              func() []sample
}

func (r *registry) gaugeFunc(name, help string, labels []string, fn func() []sample) {
	r.register(name, &funcFamily{name: name, help: help, typ: "gauge", labels: labels, fn: fn})
}

func (r *registry) counterFunc(name, help string, labels []string, fn func() []sample) {
	r.register(name, &funcFamily{name: name, help: help, typ: "counter", labels: labels, fn: fn})
}

func (f *funcFamily) write(w *bufio.Writer) {
	ss := f.fn()
	slices.SortFunc(ss, func(a, b sample) int {
		return strings.Compare(strings.Join(a.values, labelSep), strings.Join(b.values, labelSep))
	})
	header(w, f.name, f.help, f.typ)
	for _, s := range ss {
		fmt.Fprintf(w, "%s%s %s\n", f.name, labelText(f.labels, s.values), formatFloat(s.v))
	}
}

// histVec is a histogram family with labels and fixed buckets.
type histVec struct {
	name, help string
	labels     []string
	buckets    []float64 // upper bounds, ascending, without +Inf
	mu         sync.Mutex
	series     map[string]*hist
}

type hist struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

// latencyBuckets suit HTTP calls and durable acceptance: 1 ms to 30 s.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// runBuckets suit whole runs: 100 ms to 2 h.
var runBuckets = []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200}

func (r *registry) histogram(name, help string, buckets []float64, labels ...string) *histVec {
	h := &histVec{name: name, help: help, labels: labels, buckets: buckets, series: map[string]*hist{}}
	r.register(name, h)
	return h
}

// Observe records v in the series with these label values.
func (h *histVec) Observe(v float64, values ...string) {
	if len(values) != len(h.labels) {
		panic(fmt.Sprintf("%s: %d label values for %d labels", h.name, len(values), len(h.labels)))
	}
	k := strings.Join(values, labelSep)
	i, _ := slices.BinarySearch(h.buckets, v) // first bound >= v: le is inclusive
	h.mu.Lock()
	s := h.series[k]
	if s == nil {
		s = &hist{counts: make([]uint64, len(h.buckets)+1)}
		h.series[k] = s
	}
	s.counts[i]++
	s.sum += v
	s.count++
	h.mu.Unlock()
}

func (h *histVec) write(w *bufio.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	header(w, h.name, h.help, "histogram")
	for _, k := range sortedKeys(h.series) {
		s := h.series[k]
		values := splitKey(k, len(h.labels))
		var cum uint64
		for i, c := range s.counts {
			cum += c
			le := "+Inf"
			if i < len(h.buckets) {
				le = formatFloat(h.buckets[i])
			}
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelText(h.labels, values, "le", le), cum)
		}
		lt := labelText(h.labels, values)
		fmt.Fprintf(w, "%s_sum%s %s\n", h.name, lt, formatFloat(s.sum))
		fmt.Fprintf(w, "%s_count%s %d\n", h.name, lt, s.count)
	}
}
