package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"casesync/engine/spec"
	"casesync/internal/manifest"
)

const manifestLong = `Manifest prints a deployment's data-sharing manifest, generated from the
loaded spec and nothing else: for each pipeline, which fields leave which
system for which; the filters that gate them, consent rules marked and
quoted with their spec position (file:line:col); the lookups that transform
them; each field's sensitivity class (the deployment's sensitivity block);
the schedule or trigger; and what the state file keeps and for how long.

Attach it to a data-sharing agreement or a DPIA and regenerate it on every
change: a field added to a map shows up, a field removed disappears. A spec
with problems prints them (as engine check does) and no manifest.

Formats: md (the annex, default), json (for tools), html (one page).`

func (a *app) manifestCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "manifest [DIR]",
		Short: "Print the data-sharing manifest generated from a deployment's spec",
		Long:  manifestLong,
		Example: `  engine manifest specs/cambodia --format md

  # One page to attach to a DPIA
  engine manifest specs/unhcr --format html > /tmp/unhcr-manifest.html`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "md", "json", "html":
			default:
				return usageError("--format must be md, json or html, not %q", format)
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			plan, err := spec.Load(dir, spec.Options{})
			var ps spec.Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					fmt.Fprintln(a.stdout, p.String())
				}
				return &exitError{code: 1, err: fmt.Errorf("%s has spec problems: no manifest", dir)}
			} else if err != nil {
				return &exitError{code: 2, err: err}
			}
			m := manifest.Build(plan)
			switch format {
			case "json":
				a.stdout.Write(m.JSON())
			case "html":
				a.stdout.Write(m.HTML())
			default:
				a.stdout.Write(m.Markdown())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "md", "output: md, json or html")
	return cmd
}
