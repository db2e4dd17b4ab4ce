/* A made-up target where two flavors of `struct point` disagree on where `x` is: libbpf
 * calls this a field offset ambiguity and refuses; so must we. */
struct point___a {
	int x;
	int y;
};

struct point___b {
	int y;
	int x;
};

struct point___a the_a;
struct point___b the_b;
