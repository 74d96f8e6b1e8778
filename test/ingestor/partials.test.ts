/**
 * The closing fan-out's partial sums, without AWS: the tiling that makes the
 * merge count every ledger key once, the exact sums, and the pages.
 */
import { groupPages } from '../../src/ingestor/shared.lambda/closing-job';
import { PartialEntry, partialPages, partitionOf, PartialTotals, splitSegments, sumOfUnits, tiling, uncovered } from '../../src/ingestor/shared.lambda/partials';

describe('tiling: each ledger key in exactly one segment', () => {
  test('the segments of one split tile the keys', () => {
    expect(tiling([{ from: 8, to: 16 }, { from: 0, to: 8 }], 16)).toEqual([{ from: 0, to: 8 }, { from: 8, to: 16 }]);
  });

  test('with a segment split again after a worker stopped, one tiling is taken: never a key twice', () => {
    // GIVEN [0, 8) done, and also [0, 3) and [3, 8) (a worker resumed by another split), and [8, 16)
    const done = [{ from: 0, to: 3 }, { from: 0, to: 8 }, { from: 3, to: 8 }, { from: 8, to: 16 }];
    // WHEN
    const tiles = tiling(done, 16)!;
    // THEN every key once
    const keys = tiles.flatMap((t) => Array.from({ length: t.to - t.from }, (_, i) => t.from + i));
    expect(keys).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  test('backtracks when the longest segment leads nowhere', () => {
    expect(tiling([{ from: 0, to: 6 }, { from: 0, to: 3 }, { from: 3, to: 10 }], 10)).toEqual([{ from: 0, to: 3 }, { from: 3, to: 10 }]);
  });

  test('no tiling while a key is missing; the missing keys, split for new messages', () => {
    const done = [{ from: 0, to: 3 }, { from: 8, to: 16 }];
    expect(tiling(done, 16)).toBeUndefined();
    expect(uncovered(done, 16)).toEqual([{ from: 3, to: 8 }]);
    expect(splitSegments(uncovered(done, 16), 2)).toEqual([{ from: 3, to: 5 }, { from: 5, to: 7 }, { from: 7, to: 8 }]);
  });
});

describe('exact sums', () => {
  test('partials of 10^-9 units add exactly, however many: 0.1 x 10 is 1, 123456789012345.123456789 x 2 is exact', () => {
    const totals = new PartialTotals();
    for (let i = 0; i < 10; i++) totals.add('t', 'm', BigInt(100_000_000), 1);
    totals.add('t', 'big', BigInt('123456789012345123456789'), 1);
    totals.addEntries([['t', 'big', '123456789012345123456789', 1]]);
    expect(totals.closedEntries()).toEqual([['t', 'big', '246913578024690.246913578', 2], ['t', 'm', '1', 10]]);
    expect(sumOfUnits(BigInt(0))).toBe('0');
  });
});

describe('pages', () => {
  test('a segment\'s partial splits by partition (a hash of the tenant), in pages under the size limit; the closed pages of a partition are its tenant groups', () => {
    // GIVEN 3,000 windows of 300 tenants
    const totals = new PartialTotals();
    for (let i = 0; i < 3000; i++) totals.add(`tenant-${i % 300}`, `metric-${Math.floor(i / 300)}`, BigInt(i), 1);
    // WHEN split in 4 partitions with pages of at most 8 KB
    const pages = partialPages(totals, 4, 8 * 1024);
    // THEN every window is in the page list of its tenant's partition, once
    const all = pages.flatMap((list, p) => list.flatMap((page) => page.map((e): [number, PartialEntry] => [p, e])));
    expect(all).toHaveLength(3000);
    for (const [p, e] of all) expect(partitionOf(e[0], 4)).toBe(p);
    for (const list of pages) for (const page of list) expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThanOrEqual(8 * 1024 + 2);
    // AND the closed pages of partition 1 with 8 groups are groups 1 and 5 only
    const merged = new PartialTotals();
    for (const page of pages[1]) merged.addEntries(page);
    expect([...new Set(groupPages(merged.closedEntries(), 8, 1, 4).map((p) => p.group))].sort()).toEqual([1, 5]);
  });

  test('fails if a tenant is merged into a partition that does not own its group', () => {
    expect(() => groupPages([['tenant-0', 'm', '1', 1]], 8, (partitionOf('tenant-0', 4) + 1) % 4, 4)).toThrow(/is in group \d+, not in partition/);
  });
});
