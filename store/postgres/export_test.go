package postgres

import "time"

// StatsRefreshed receives a value after each statistics refresh.
func (db *DB) StatsRefreshed() <-chan struct{} { return db.stats.refreshed }

// SetHeadRefreshInterval replaces HeadRefreshInterval for db.
func (db *DB) SetHeadRefreshInterval(d time.Duration) {
	db.heads.mu.Lock()
	db.heads.interval = d
	db.heads.mu.Unlock()
}

// OnHeadsFlushed calls fn after each timer write of deferred heads.
func (db *DB) OnHeadsFlushed(fn func()) {
	db.heads.mu.Lock()
	db.heads.flushed = fn
	db.heads.mu.Unlock()
}

// SetHeadClock replaces the clock the head cache measures intervals by.
func (db *DB) SetHeadClock(now func() time.Time) {
	db.heads.mu.Lock()
	db.heads.now = now
	db.heads.mu.Unlock()
}
