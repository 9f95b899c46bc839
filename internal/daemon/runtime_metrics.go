package daemon

import (
	"bufio"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// runtimeFamilies are the standard go_* and process_* metrics (goroutines,
// heap, GC pauses, CPU seconds, resident memory, open file descriptors,
// start time) from client_golang's own collectors: dashboards and alerts
// written for any Go service expect exactly these names and semantics,
// and reading /proc portably is not ours to maintain. The daemon's own
// families stay in the small registry above.
type runtimeFamilies struct {
	reg *prometheus.Registry
}

func newRuntimeFamilies() *runtimeFamilies {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &runtimeFamilies{reg: r}
}

func (f *runtimeFamilies) write(w *bufio.Writer) {
	mfs, err := f.reg.Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if e := enc.Encode(mf); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		// A comment line keeps the exposition parseable and says why a
		// family is missing.
		fmt.Fprintf(w, "# runtime metrics: %s\n", escapeHelp(err.Error()))
	}
}
