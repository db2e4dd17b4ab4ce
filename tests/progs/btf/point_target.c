/* A made-up "kernel" for CO-RE tests: its BTF is the target of tests/progs/core_custom.bpf.c.
 * Compiled with `clang -g -c` (any target); only the .BTF section is used. */
struct point {
	long pad;
	unsigned int flags : 3, kind : 5;
	unsigned short y;
	int x;
};

enum color { GREEN = 7, RED = 8 };

struct point the_point;
enum color the_color;
