import type Database from 'better-sqlite3';
import { alreadyExists, notFound } from '../model/errors.js';
import { type Image, imageSchema } from '../model/image.js';

interface ImageRow {
  id: string;
  name: string;
  managed: number;
  source_json: string;
  artifacts_json: string;
  config_json: string;
  size_bytes: number;
  created_at: string;
  updated_at: string;
}

function fromRow(row: ImageRow): Image {
  return imageSchema.parse({
    id: row.id,
    name: row.name,
    managed: row.managed === 1,
    source: JSON.parse(row.source_json),
    artifacts: JSON.parse(row.artifacts_json),
    config: JSON.parse(row.config_json),
    sizeBytes: row.size_bytes,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

/** The images table. Rows leave as validated `Image`s. */
export class ImageRepository {
  private readonly db: Database.Database;

  constructor(db: Database.Database) {
    this.db = db;
  }

  list(): Image[] {
    return (this.db.prepare('SELECT * FROM images ORDER BY name').all() as ImageRow[]).map(fromRow);
  }

  findByName(name: string): Image | undefined {
    const row = this.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as ImageRow | undefined;
    return row && fromRow(row);
  }

  findById(id: string): Image | undefined {
    const row = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
    return row && fromRow(row);
  }

  getByName(name: string): Image {
    const image = this.findByName(name);
    if (!image) throw notFound(`image ${JSON.stringify(name)} not found`, { hint: 'banger image list' });
    return image;
  }

  insert(image: Image): void {
    try {
      this.db
        .prepare(
          `INSERT INTO images (id, name, managed, source_json, artifacts_json, config_json, size_bytes, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          image.id,
          image.name,
          image.managed ? 1 : 0,
          JSON.stringify(image.source),
          JSON.stringify(image.artifacts),
          JSON.stringify(image.config),
          image.sizeBytes,
          image.createdAt,
          image.updatedAt,
        );
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw alreadyExists(`image ${JSON.stringify(image.name)} already exists`, { cause: err });
      }
      throw err;
    }
  }

  /** Rewrites every column but id and name (promote turns a registered image into a managed one). */
  update(image: Image): void {
    this.db
      .prepare(
        `UPDATE images SET managed = ?, source_json = ?, artifacts_json = ?, config_json = ?, size_bytes = ?,
           updated_at = ? WHERE id = ?`,
      )
      .run(
        image.managed ? 1 : 0,
        JSON.stringify(image.source),
        JSON.stringify(image.artifacts),
        JSON.stringify(image.config),
        image.sizeBytes,
        image.updatedAt,
        image.id,
      );
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM images WHERE id = ?').run(id);
  }
}
