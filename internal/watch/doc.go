// Package watch tells its owner that a deployment's spec files changed. It
// watches directories (never single files: editors save by writing a
// temporary file and renaming it over the original, which silences a watch
// on the old file), filters out editor debris and the state file's own
// -wal/-shm/-journal companions, and debounces a burst of events into one
// signal. It can also poll, for file systems that send no events.
//
// It only says "changed": it knows nothing about CUE, plans or reloads.
package watch
