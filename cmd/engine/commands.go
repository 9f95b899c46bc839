package main

import "github.com/spf13/cobra"

// extraCommands lists the commands beyond check; each lives in its own file.
func (a *app) extraCommands() []*cobra.Command {
	return []*cobra.Command{a.syncCmd(), a.dryRunCmd(), a.demoCmd(), a.fakeCmd(), a.benchCmd(),
		a.statusCmd(), a.runsCmd(), a.failuresCmd(), a.retryCmd(), a.cursorCmd(), a.runCmd(), a.testCmd(), a.manifestCmd()}
}
