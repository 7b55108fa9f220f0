package archive

// The tests write in small chunks, so ranges cross chunk boundaries.
func init() { writeChunk = 64 }
