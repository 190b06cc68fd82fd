/**
 * A store of values by key with per-key listeners (pure, no React): setting a new map notifies only the keys
 * whose value changed. The editor keeps per-node derived state in these (the probe's port refusals while a
 * connection is drawn, each node's error role), so a change re-renders the touched nodes, not all of them.
 */
type Listener = () => void;

/** Listeners by key; `onIdle(key)` runs when a key's last listener goes. */
export class KeyedListeners {
  private byKey = new Map<string, Set<Listener>>();

  constructor(private onIdle: (key: string) => void = () => {}) {}

  /** Call `fn` on `notify(key)`; returns the unsubscribe function. */
  subscribe(key: string, fn: Listener): () => void {
    let set = this.byKey.get(key);
    if (!set) this.byKey.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size && this.byKey.get(key) === set) {
        this.byKey.delete(key);
        this.onIdle(key);
      }
    };
  }

  notify(key: string): void {
    for (const fn of this.byKey.get(key) ?? []) fn();
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  clear(): void {
    this.byKey.clear();
  }
}

export class KeyedStore<V> {
  private values = new Map<string, V>();
  private listeners = new KeyedListeners();

  /** The value at `key` (the same object until it changes). */
  get(key: string): V | undefined {
    return this.values.get(key);
  }

  /** Call `fn` when the value at `key` changes; returns the unsubscribe function. */
  subscribe(key: string, fn: Listener): () => void {
    return this.listeners.subscribe(key, fn);
  }

  /** Replace every value; `same` says when an old and a new value are equal (no notification). */
  replace(next: Map<string, V>, same: (a: V, b: V) => boolean = Object.is): void {
    const changed: string[] = [];
    for (const [k, v] of next) {
      const old = this.values.get(k);
      if (old === undefined || !same(old, v)) changed.push(k);
      else next.set(k, old); // keep the old object: subscribers compare by identity
    }
    for (const k of this.values.keys()) if (!next.has(k)) changed.push(k);
    this.values = next;
    for (const k of changed) this.listeners.notify(k);
  }
}
