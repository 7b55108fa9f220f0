package postgres

// StatsRefreshed receives a value after each statistics refresh.
func (db *DB) StatsRefreshed() <-chan struct{} { return db.stats.refreshed }
