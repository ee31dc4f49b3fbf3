/*
 * Whole writes to a descriptor, for the daemon's and the agent's file writers alike:
 * write(2) may take fewer bytes than asked (a signal, a pipe, a nearly full disk).
 */
#ifndef CAROTATE_IO_H
#define CAROTATE_IO_H

#include <stddef.h>
#include <sys/types.h>

/* 0 once all len bytes of buf are written; -1 with errno (EINTR retried) otherwise. */
int io_write_all(int fd, const void *buf, size_t len);
/* The same at offset off, the file offset unchanged (pwrite(2)). */
int io_pwrite_all(int fd, const void *buf, size_t len, off_t off);

#endif
