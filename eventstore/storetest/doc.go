// Package storetest is the one contract suite that every eventstore adapter runs. An adapter's
// test calls Run with a Harness that makes fresh, empty stores.
//
// Data flows from the suite into the adapter under test (appends) and back (reads and
// subscriptions), which the suite compares with what it appended.
package storetest
