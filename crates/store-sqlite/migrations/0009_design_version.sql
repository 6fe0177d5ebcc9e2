-- A tenant's design version: raised by the database itself whenever a row of the catalogue
-- (user_tables, user_fields) of that tenant is inserted, changed or deleted, whichever code
-- did it. Each node keeps the table designs it has read, tagged with this version; a request
-- reads the version with its session and re-reads a design only when the version moved.
ALTER TABLE tenants ADD COLUMN design_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER user_tables_design_insert AFTER INSERT ON user_tables BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id = NEW.tenant_id;
END;
CREATE TRIGGER user_tables_design_update AFTER UPDATE ON user_tables BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id IN (OLD.tenant_id, NEW.tenant_id);
END;
CREATE TRIGGER user_tables_design_delete AFTER DELETE ON user_tables BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id = OLD.tenant_id;
END;
CREATE TRIGGER user_fields_design_insert AFTER INSERT ON user_fields BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_tables WHERE id = NEW.table_id);
END;
CREATE TRIGGER user_fields_design_update AFTER UPDATE ON user_fields BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id IN (SELECT tenant_id FROM user_tables WHERE id IN (OLD.table_id, NEW.table_id));
END;
CREATE TRIGGER user_fields_design_delete AFTER DELETE ON user_fields BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_tables WHERE id = OLD.table_id);
END;
