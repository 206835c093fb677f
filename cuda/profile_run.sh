set -u
make -s cuda 2>&1 | grep -v unnamed | tail -3
for k in solve_small:3 "solve_blocks_kernel<16>:4"; do
  name=${k%%:*}; skip=${k##*:}; tag=$(echo $name | tr -dc 'a-z0-9')
  timeout 200 ncu --set full --import-source yes -k "regex:${name%%<*}" --launch-skip $skip --launch-count 1 -o $OUT/p_$tag ./build/bench_cuda --no-peers > /dev/null 2>&1
  ncu --import $OUT/p_$tag.ncu-rep --page source --csv --print-source=sass > $OUT/sass_$tag.csv 2>&1
  ncu --import $OUT/p_$tag.ncu-rep --page details > $OUT/details_$tag.txt 2>&1
  rm -f $OUT/p_$tag.ncu-rep; ls -la $OUT
done
