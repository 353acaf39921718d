// Rendering batched per animation frame: stream handlers only change state and mark a view dirty;
// each dirty view is drawn once in the next frame, however many messages arrived meanwhile.

export class Frames {
  constructor() {
    this.dirty = new Map(); // name → draw function
    this.pending = false;
    this.frames = 0;  // frames that drew something
    this.drawMs = 0;  // time spent drawing in them (bench/dashboard.py reads both)
  }

  /** Draw `name` with `draw` in the next frame (the latest draw function wins). */
  mark(name, draw) {
    this.dirty.set(name, draw);
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    const started = performance.now();
    this.pending = false;
    this.frames += 1;
    const work = [...this.dirty.values()];
    this.dirty.clear();
    for (const draw of work) {
      try {
        draw();
      } catch (exc) {
        console.error("render failed", exc); // one broken view must not stop the others
      }
    }
    this.drawMs += performance.now() - started;
  }
}
