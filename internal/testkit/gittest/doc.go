// Package gittest helps tests drive the real C git client: an isolated
// environment (no user or system configuration leaks in), generated
// repositories of a chosen shape, and ref listings to compare sites with.
// It is imported only by tests.
package gittest
