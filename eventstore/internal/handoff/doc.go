// Package handoff passes an append from its caller to the goroutine that commits it together
// with others (group commit), and the outcome back. Exactly one of two things happens to a
// ticket: a committer takes it and answers, or its caller withdraws it while it still waits in
// the queue — so a caller that gives up never has its append applied behind its back, and one
// whose append was taken always learns the real outcome.
package handoff
