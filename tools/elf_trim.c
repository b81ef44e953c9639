/*
 * elf_trim - cut a static executable down to what the kernel loads.
 *
 *   elf_trim FILE
 *
 * Running a program needs only the ELF header, the program headers and the
 * bytes the PT_LOAD segments map. After `-s` a static binary still carries
 * the section headers (64 bytes each), their names (.shstrtab) and non-loaded
 * sections such as .comment: about a kilobyte that only tools like readelf
 * and objdump read. This tool zeroes the header's pointers to the section
 * table (e_shoff, e_shnum, e_shstrndx, as the ELF specification allows: "If
 * the file has no section header table, this member holds zero") and truncates
 * the file after the last byte any program header covers. The smserve image
 * is one such binary, and its files are to stay under 200,000 bytes.
 *
 * Only a 64-bit ELF file in this machine's byte order is changed; anything
 * else is left as it is, with a note, so that a build elsewhere still works.
 * Built with the host compiler at build time; never part of the image.
 */
#define _POSIX_C_SOURCE 200809L
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int host_is_little_endian(void)
{
	const unsigned one = 1;
	return *(const unsigned char *)&one == 1;
}

static int read_exact(int fd, void *buf, size_t n, off_t at)
{
	return pread(fd, buf, n, at) == (ssize_t)n ? 0 : -1;
}

/* Whether this tool knows how to handle the file. */
static int handled(const Elf64_Ehdr *eh)
{
	int order = host_is_little_endian() ? ELFDATA2LSB : ELFDATA2MSB;
	return memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
	       eh->e_ident[EI_DATA] == order && eh->e_phentsize == sizeof(Elf64_Phdr) &&
	       eh->e_phnum > 0;
}

/* The end of the last byte the header, the program headers or a segment's
 * file image covers: what the kernel reads. 0 when a header cannot be read. */
static off_t loaded_end(int fd, const Elf64_Ehdr *eh)
{
	Elf64_Off end = eh->e_phoff + (Elf64_Off)eh->e_phnum * sizeof(Elf64_Phdr);
	int i;
	if (end < sizeof *eh)
		end = sizeof *eh;
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		if (read_exact(fd, &ph, sizeof ph, (off_t)(eh->e_phoff + (Elf64_Off)i * sizeof ph)))
			return 0;
		if (ph.p_filesz > 0 && ph.p_offset + ph.p_filesz > end)
			end = ph.p_offset + ph.p_filesz;
	}
	return (off_t)end;
}

int main(int argc, char **argv)
{
	Elf64_Ehdr eh;
	struct stat st;
	off_t end;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: elf_trim FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "elf_trim: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (read_exact(fd, &eh, sizeof eh, 0) != 0 || !handled(&eh)) {
		fprintf(stderr, "elf_trim: %s: not a 64-bit ELF file in this byte order; left as is\n",
			argv[1]);
		close(fd);
		return 0;
	}
	end = loaded_end(fd, &eh);
	if (end <= 0 || end > st.st_size) {
		fprintf(stderr, "elf_trim: %s: program headers point past the file\n", argv[1]);
		close(fd);
		return 1;
	}
	eh.e_shoff = 0;
	eh.e_shnum = 0;
	eh.e_shstrndx = SHN_UNDEF;
	if (pwrite(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || ftruncate(fd, end) != 0 ||
	    close(fd) != 0) {
		fprintf(stderr, "elf_trim: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	return 0;
}
