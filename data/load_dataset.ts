/**
 * One entry point from a dataset name (as typed on a command line) or a typed spec to a
 * {@linkcode Dataset}: `mnist` (or `mnist:train`, `mnist:test`), `cifar10:<path>`, `png:<folder>`,
 * `toy:<name>`.
 *
 * Not tied to a paper; the loaders it dispatches to cite theirs.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { loadCifar10, type LoadCifar10Options } from "./cifar10.ts";
import type { Dataset } from "./dataset.ts";
import { loadMnist, type LoadMnistOptions } from "./mnist.ts";
import { loadPngFolder, type LoadPngFolderOptions } from "./png_folder.ts";
import { makeToy, TOY_NAMES, type ToyName, type ToyOptions } from "./toy2d.ts";

/** A dataset request; the string forms of {@linkcode loadDataset} parse to these. */
export type DatasetSpec =
  | ({ kind: "mnist" } & LoadMnistOptions)
  | ({ kind: "cifar10"; path: string } & LoadCifar10Options)
  | ({ kind: "png"; path: string } & LoadPngFolderOptions)
  | ({
    kind: "toy";
    name: ToyName;
    /** Seed of the toy set's generator. @default 0 */
    seed?: number;
  } & Omit<ToyOptions, "rng">);

const FORMS = `mnist, mnist:train, mnist:test, cifar10:<file or folder>, png:<folder>, toy:<${
  TOY_NAMES.join("|")
}>`;

/**
 * Parses a dataset name as typed on a command line.
 *
 * @param text `mnist`, `mnist:train`, `mnist:test`, `cifar10:<path>`, `png:<folder>` or `toy:<name>`.
 * @returns The matching spec with default options.
 * @throws {UserError} For an unknown name or a missing path, listing the valid forms.
 * @example Parse a toy set name
 * ```ts
 * import { parseDatasetSpec } from "./load_dataset.ts";
 * const spec = parseDatasetSpec("toy:two-moons"); // { kind: "toy", name: "two-moons" }
 * ```
 */
export function parseDatasetSpec(text: string): DatasetSpec {
  const colon = text.indexOf(":");
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? "" : text.slice(colon + 1);
  if (kind === "mnist" && colon < 0) return { kind: "mnist" };
  if (kind === "mnist" && (rest === "train" || rest === "test")) return { kind, split: rest };
  if (kind === "cifar10" || kind === "png") {
    if (rest === "") {
      throw new UserError(
        `dataset "${text}" needs a path: write ${
          kind === "png" ? "png:<folder>" : "cifar10:<data_batch file or folder>"
        }`,
      );
    }
    return { kind, path: rest };
  }
  if (kind === "toy") return { kind: "toy", name: checkToyName(rest) };
  throw new UserError(`unknown dataset "${text}": use one of ${FORMS}`);
}

/**
 * Loads a dataset from its name or spec.
 *
 * @param spec A string form (see {@linkcode parseDatasetSpec}) or a {@linkcode DatasetSpec}.
 * @returns A new dataset; the caller owns it.
 * @throws {UserError} For unknown names and for every file problem the loaders report.
 * @example Load a seeded toy set
 * ```ts
 * import { loadDataset } from "./load_dataset.ts";
 * const ds = await loadDataset({ kind: "toy", name: "eight-gaussians", count: 512, seed: 3 });
 * console.assert(ds.count === 512);
 * ```
 */
export async function loadDataset(spec: string | DatasetSpec): Promise<Dataset> {
  const s = typeof spec === "string" ? parseDatasetSpec(spec) : spec;
  switch (s.kind) {
    case "mnist": {
      const { kind: _, ...options } = s;
      return await loadMnist(options);
    }
    case "cifar10": {
      const { kind: _, path, ...options } = s;
      return await loadCifar10(path, options);
    }
    case "png": {
      const { kind: _, path, ...options } = s;
      return await loadPngFolder(path, options);
    }
    case "toy": {
      const { kind: _, name, seed = 0, ...options } = s;
      return makeToy(checkToyName(name), { ...options, rng: new Rng(seed) });
    }
    default:
      throw new UserError(
        `unknown dataset kind "${(s as { kind: unknown }).kind}": use mnist, cifar10, png or toy`,
      );
  }
}

/**
 * The held-out counterpart of a training set's name: `mnist:train` gives `mnist:test`; any other
 * name is returned as is (evaluations then take the last images of that set).
 *
 * @param spec A dataset name as typed on a command line.
 * @returns The name to evaluate on.
 * @example The MNIST training split's test split
 * ```ts
 * import { heldOutDataset } from "./load_dataset.ts";
 * console.assert(heldOutDataset("mnist:train") === "mnist:test");
 * ```
 */
export function heldOutDataset(spec: string): string {
  return spec === "mnist:train" ? "mnist:test" : spec;
}

function checkToyName(name: string): ToyName {
  if ((TOY_NAMES as readonly string[]).includes(name)) return name as ToyName;
  throw new UserError(
    `unknown toy set "${name}": use toy:<name> with one of ${TOY_NAMES.join(", ")}`,
  );
}
