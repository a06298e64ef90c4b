#include <cstdio>
int main() { std::puts("swiattn: CLI under construction"); return 1; }
